"""Text layouts (the console, `.txt` file targets) escape control characters in every field and
write tracebacks on continuation lines, so no request can print a line that passes for a record."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings as hypothesis_settings, strategies as st

from tests.servers import free_port, run_twooter, wait_until_serving
from twooter import create_app
from twooter.data import engine as database
from twooter.logwriter import config as log_config
from twooter.logwriter import records

FORGED = "/%0A2026-01-01T00:00:00.000Z|ERROR|twooter.security|0|forged%20entry"
CONSOLE_LAYOUT = "${time}|${level}|${logger}|${request_id}|${message}${exception}"
EVERY_FIELD = "|".join("${%s}" % name for name in records.LAYOUT_FIELDS if name != "exception") + "${exception}"
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\|")


def test_a_forged_record_in_the_path_prints_one_console_line_with_the_newline_escaped(tmp_path):
    instance = tmp_path / "instance"
    port = free_port()
    server = run_twooter(instance, "serve", "--port", str(port), "--threads", "2",
                         database_url=f"sqlite:///{instance / 'twooter.sqlite'}",
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/public", server)
        answer = requests.get(f"http://127.0.0.1:{port}{FORGED}", timeout=30)
        assert answer.status_code == 404
    finally:
        server.terminate()
        _, console = server.communicate(timeout=30)
    lines = console.splitlines()
    mentioning = [line for line in lines if "forged entry" in line]
    # The request's record, and nothing else, holds the text; the newline is the two characters \n.
    assert len(mentioning) == 1, mentioning
    assert "|GET /\\n2026-01-01T00:00:00.000Z|ERROR|twooter.security|0|forged entry 404" in mentioning[0]
    assert not any(line.startswith("2026-01-01T00:00:00.000Z") for line in lines)
    assert all(RECORD_START.match(line) or line.startswith(records.CONTINUATION) for line in lines), lines


def text_target_app(tmp_path: Path, layout: str):
    config = tmp_path / "logging.json"
    config.write_text(json.dumps({
        "targets": {"file": {"type": "file"}, "text": {"type": "file", "layout": layout}},
        "rules": [{"logger": "twooter", "minlevel": "INFO", "writeTo": ["file", "text"]}],
    }))
    return create_app({"INSTANCE_PATH": tmp_path / "instance", "LOG_INSTANCE_NAME": "web1", "TESTING": True,
                       "LOG_CONFIG": config})


def text_lines(tmp_path: Path) -> list[str]:
    (path,) = (tmp_path / "instance" / "logs").glob("*.web1.txt")
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_a_traceback_goes_on_continuation_lines_none_of_which_passes_for_a_record(tmp_path):
    app = text_target_app(tmp_path, CONSOLE_LAYOUT)
    with app.app_context():
        try:
            raise ValueError("bad value\n2026-01-01T00:00:00.000Z|ERROR|twooter.security||forged from an exception")
        except ValueError:
            logging.getLogger("twooter.test").exception("it broke\r\nFATAL|twooter|| a forged line")
        logging.getLogger("twooter.test").info("after")
    lines = text_lines(tmp_path)
    starts = [line for line in lines if RECORD_START.match(line)]
    assert len(starts) == 2
    assert starts[0].endswith("|ERROR|twooter.test||it broke\\r\\nFATAL|twooter|| a forged line")
    assert starts[1].endswith("|INFO|twooter.test||after")
    continuation = [line for line in lines if not RECORD_START.match(line)]
    assert continuation and all(line.startswith(records.CONTINUATION) for line in continuation)
    assert continuation[0] == records.CONTINUATION + "Traceback (most recent call last):"
    assert records.CONTINUATION + "2026-01-01T00:00:00.000Z|ERROR|twooter.security||forged from an exception" \
        in continuation
    # The continuation lines stand between the record they belong to and the next one.
    assert lines.index(starts[1]) == len(lines) - 1


def test_request_fields_are_escaped_too(tmp_path):
    app = text_target_app(tmp_path, EVERY_FIELD)
    database.upgrade_to_latest(app)
    with app.test_client() as client:
        client.get("/nobody%1b[2J%0d%e2%80%a8here?q=%0a%09x\\y", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    (line,) = [line for line in text_lines(tmp_path) if "nobody" in line]
    assert "|/nobody\\x1b[2J\\r\\u2028here?q=%0a%09x\\\\y|404|" in line
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", line)


def test_a_layout_that_could_start_like_a_continuation_line_is_refused(tmp_path):
    for layout in ("${message}|${level}", "  ${time}|${message}", "${exception}${time}"):
        path = tmp_path / "logging.json"
        path.write_text(json.dumps({"targets": {"t": {"type": "console", "layout": layout}},
                                    "rules": [{"logger": "", "writeTo": ["t"]}]}))
        with pytest.raises(log_config.ConfigError, match="must start with"):
            log_config.load(path)


any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@hypothesis_settings(max_examples=300, deadline=None)
@given(level=any_text, logger=any_text, message=any_text, instance=any_text, exception=any_text,
       request=st.fixed_dictionaries({name: any_text for name in records.REQUEST_FIELDS}))
def test_any_field_text_renders_as_one_record_line_and_continuation_lines(level, logger, message, instance,
                                                                          exception, request):
    record = records.Record(datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc), level, logger, message,
                            instance, exception, request)
    text = records.render(record, EVERY_FIELD).decode("utf-8")
    first, *rest = text.split("\n")[:-1]
    assert first.startswith("2030-01-02T03:04:05.000Z|")
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\x85]", first)
    assert len(rest) == (len(exception.split("\n")) if exception else 0)
    assert all(line.startswith(records.CONTINUATION) for line in rest)
    assert not any(re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\x85]", line) for line in rest)
    assert f"|{records.escape_text(message)}|" in first


def test_escapes_read_back_to_the_text():
    text = "a\nb\r\tc\\d\x1b\x00e\u2028f\x85"
    escaped = records.escape_text(text)
    assert escaped == "a\\nb\\r\\tc\\\\d\\x1b\\x00e\\u2028f\\x85"
    assert escaped.encode("ascii").decode("unicode_escape") == text
    assert os.linesep not in escaped
