"""Writing logs over real files: levels, the configuration file and its reload, day files,
concurrent writers, console capture, and lines that read back exactly."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from tests.logfiles import read_records
from twooter import create_app
from twooter.logwriter import config as log_config
from twooter.logwriter import levels, records
from twooter.logwriter.files import log_files

PROJECT = Path(__file__).resolve().parent.parent


def write_config(path: Path, rules: list[dict], layout: str = "json") -> Path:
    path.write_text(json.dumps({
        "targets": {"file": {"type": "file", "layout": layout}},
        "rules": rules,
    }, indent=2))
    return path


def make_app(tmp_path: Path, instance: str = "web1", **settings):
    return create_app({"INSTANCE_PATH": tmp_path / "instance", "LOG_INSTANCE_NAME": instance,
                       "TESTING": True, **settings})


def messages(folder: Path, logger: str | None = None) -> list[tuple[str, str]]:
    return [(r.level, r.message) for r in read_records(folder) if logger is None or r.logger == logger]


@pytest.fixture
def log_dir(tmp_path) -> Path:
    return tmp_path / "instance" / "logs"


def test_seven_levels_are_real_levels_of_the_loggers(tmp_path, log_dir):
    path = write_config(tmp_path / "logging.json", [{"logger": "twooter", "minlevel": "TRACE", "writeTo": "file"}])
    app = make_app(tmp_path, LOG_CONFIG=path)
    logger = logging.getLogger("twooter.levels")
    assert isinstance(logger, levels.TwooterLogger)
    with app.app_context():
        logger.trace("a trace")
        logger.debug("a debug")
        logger.info("an info")
        logger.warning("a warn")
        logger.error("an error")
        logger.fatal("a fatal")
        logger.critical("a critical is FATAL too")
    assert messages(log_dir, "twooter.levels") == [
        ("TRACE", "a trace"), ("DEBUG", "a debug"), ("INFO", "an info"), ("WARN", "a warn"),
        ("ERROR", "an error"), ("FATAL", "a fatal"), ("FATAL", "a critical is FATAL too"),
    ]
    assert logging.getLevelName(levels.TRACE) == "TRACE"
    assert logging.getLevelName("FATAL") == levels.FATAL > levels.ERROR
    assert levels.threshold("off") == levels.OFF > levels.FATAL


def test_thresholds_per_logger_and_off(tmp_path, log_dir):
    path = write_config(tmp_path / "logging.json", [
        {"logger": "twooter", "minlevel": "WARN", "writeTo": ["file"]},
        {"logger": "twooter.noisy", "minlevel": "OFF"},
        {"logger": "twooter.chatty", "minlevel": "DEBUG"},
    ])
    app = make_app(tmp_path, LOG_CONFIG=path)
    with app.app_context():
        logging.getLogger("twooter.x").info("below WARN")
        logging.getLogger("twooter.x").warning("at WARN")
        logging.getLogger("twooter.noisy").fatal("silenced by OFF")
        logging.getLogger("twooter.chatty").debug("a debug the child rule lets through")
        logging.getLogger("twooter.chatty").trace("below the child's DEBUG")
    assert messages(log_dir) == [("WARN", "at WARN"), ("DEBUG", "a debug the child rule lets through")]


def test_config_file_change_is_picked_up_without_restart(tmp_path, log_dir):
    instance = tmp_path / "instance"
    instance.mkdir()
    override = write_config(instance / "logging.json", [{"logger": "twooter", "minlevel": "ERROR", "writeTo": "file"}])
    app = make_app(tmp_path)
    client = app.test_client()
    probe = logging.getLogger("twooter.probe")
    with app.app_context():
        probe.info("before the change")
    write_config(override, [{"logger": "twooter", "minlevel": "INFO", "writeTo": "file"}])
    os.utime(override, ns=(time.time_ns(), time.time_ns() + 10**9))
    time.sleep(log_config.RELOAD_CHECK_SECONDS + 0.1)
    client.get("/public")  # any request looks for a changed file
    with app.app_context():
        probe.info("after the change")
    found = messages(log_dir, "twooter.probe")
    assert found == [("INFO", "after the change")]
    assert any("logging configuration loaded" in text for _, text in messages(log_dir, "twooter.logs"))


def test_broken_config_names_file_and_line_and_reload_keeps_the_old_one(tmp_path, log_dir):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "targets": {"file": {"type": "file"}},\n  "rules": [\n    {"logger": "twooter", "minlevel": "LOUD"}\n  ]\n}\n')
    with pytest.raises(log_config.ConfigError, match=r"bad\.json, line 4: .*unknown level 'LOUD'"):
        make_app(tmp_path, LOG_CONFIG=bad)
    bad.write_text('{"targets": {},\n "rules": [,]}')
    with pytest.raises(log_config.ConfigError, match=r"bad\.json, line 2"):
        log_config.load(bad)

    good = write_config(tmp_path / "good.json", [{"logger": "twooter", "minlevel": "INFO", "writeTo": "file"}])
    app = make_app(tmp_path, LOG_CONFIG=good)
    good.write_text("{ not json")
    assert not log_config.reload_if_changed(lambda: good, now=time.monotonic() + 60)
    with app.app_context():
        logging.getLogger("twooter.still").info("old configuration still in force")
    assert ("INFO", "old configuration still in force") in messages(log_dir)
    assert any(level == "ERROR" and "good.json, line 1" in text for level, text in messages(log_dir, "twooter.logs"))


def test_a_text_layout_target_writes_nlog_style_lines(tmp_path, log_dir):
    path = tmp_path / "logging.json"
    path.write_text(json.dumps({
        "targets": {"file": {"type": "file"}, "text": {"type": "file", "layout": "${level}|${logger}|${message}"}},
        "rules": [{"logger": "twooter", "minlevel": "INFO", "writeTo": ["file", "text"]}],
    }))
    app = make_app(tmp_path, LOG_CONFIG=path)
    with app.app_context():
        logging.getLogger("twooter.layout").info("pipes | inside")
    text_files = list(log_dir.glob("*.web1.txt"))
    assert len(text_files) == 1
    assert text_files[0].read_text() == "INFO|twooter.layout|pipes | inside\n"
    assert messages(log_dir, "twooter.layout") == [("INFO", "pipes | inside")]


def test_one_file_per_instance_per_utc_day_rolls_over_at_midnight(tmp_path, log_dir):
    app = make_app(tmp_path, instance="web7")
    logger = logging.getLogger("twooter.clock")
    with app.app_context():
        for moment, text in [
            (datetime(2026, 11, 28, 23, 59, 59, 999000, tzinfo=timezone.utc), "last of the 28th"),
            (datetime(2026, 11, 29, 0, 0, 0, 0, tzinfo=timezone.utc), "first of the 29th"),
        ]:
            record = logger.makeRecord(logger.name, levels.INFO, __file__, 1, text, (), None)
            record.created = moment.timestamp()
            logger.handle(record)
    first = log_dir / "2026-11-28.web7.log"
    second = log_dir / "2026-11-29.web7.log"
    assert [records.parse_line(line).message for line in first.read_bytes().splitlines()] == ["last of the 28th"]
    assert [records.parse_line(line).message for line in second.read_bytes().splitlines()] == ["first of the 29th"]
    assert records.parse_line(first.read_bytes().splitlines()[0]).time.isoformat() == "2026-11-28T23:59:59.999000+00:00"


def test_old_day_files_are_compressed_then_deleted(tmp_path, log_dir):
    log_dir.mkdir(parents=True)
    for day in ("2026-10-01", "2026-11-20", "2026-11-27"):
        (log_dir / f"{day}.web1.log").write_bytes(b'{"t":"x"}\n')
    from twooter.logwriter.files import tidy

    tidy(log_dir, compress_after_days=2, delete_after_days=30, today=datetime(2026, 11, 28).date())
    assert sorted(path.name for path in log_dir.iterdir()) == ["2026-11-20.web1.log.gz", "2026-11-27.web1.log"]
    import gzip

    assert gzip.decompress((log_dir / "2026-11-20.web1.log.gz").read_bytes()) == b'{"t":"x"}\n'


HOSTILE_TEXT = 'a | b "quoted" \'single\'\nsecond line\r\n\ttab \x00 nul \u2028 ünïcødé 🐦 \\ backslash'


def test_hostile_message_and_traceback_read_back_exactly(tmp_path, log_dir):
    app = make_app(tmp_path)
    with app.app_context():
        try:
            raise ValueError(HOSTILE_TEXT)
        except ValueError:
            logging.getLogger("twooter.hostile").exception(HOSTILE_TEXT)
    (record,) = read_records(log_dir)
    assert record.message == HOSTILE_TEXT
    assert record.exception.startswith("Traceback (most recent call last):")
    assert record.exception.endswith("ValueError: " + HOSTILE_TEXT)
    assert record.instance == "web1"
    assert len((log_dir / f"{datetime.now(timezone.utc).date()}.web1.log").read_bytes().splitlines()) == 1


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
def test_any_message_round_trips(tmp_path, text):
    record = records.Record(datetime(2026, 11, 28, 14, 3, 5, 123000, tzinfo=timezone.utc), "INFO", "twooter.x", text, "web1")
    line = record.to_line()
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    back = records.parse_line(line.rstrip(b"\n"))
    expected = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be UTF-8
    assert back == records.Record(record.time, "INFO", "twooter.x", expected, "web1")


def test_hostile_lines_are_stepped_over():
    good = records.Record(datetime(2026, 11, 28, 14, 0, tzinfo=timezone.utc), "INFO", "t", "ok").to_line().rstrip(b"\n")
    for line in [b"", b"garbage | with | pipes", b'{"t": "not a time", "lvl": "INFO"}', b"[1, 2]",
                 b'{"t":"2026-11-28T14:00:00.000Z","lvl":7}', b"\xff\xfe\x00", b'{"t":"2026-11-28T14:00:00.0', b"[" * 100000]:
        assert records.parse_line(line) is None
    broken_utf8 = good.replace(b'"ok"', b'"ok \xff\xfe end"')
    assert records.parse_line(broken_utf8).message == "ok \ufffd\ufffd end"
    assert records.parse_line(good).message == "ok"


WRITER = textwrap.dedent("""
    import logging, sys
    from twooter import create_app
    instance_path, name, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    app = create_app({"INSTANCE_PATH": instance_path, "LOG_INSTANCE_NAME": name})
    log = logging.getLogger("twooter.writer")
    with app.app_context():
        for n in range(count):
            log.info("%s %d %s", name, n, "x" * size)
""")


def test_threads_and_processes_writing_at_once_lose_and_tear_no_line(tmp_path, log_dir):
    app = make_app(tmp_path, instance="shared")
    # Lines longer than a pipe buffer (4 KiB) too: O_APPEND keeps a whole write together.
    sizes = {"short": 20, "long": 9000}

    def threaded(name: str, size: int) -> None:
        with app.app_context():
            for n in range(300):
                logging.getLogger("twooter.writer").info("%s %d %s", name, n, "x" * size)

    workers = [threading.Thread(target=threaded, args=(f"thread{i}", sizes["long" if i % 2 else "short"]))
               for i in range(4)]
    # Two processes share one instance name (one file) with the threads; two have their own.
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "instance"), name, "300", str(size)],
                         cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)})
        for name, size in [("shared", 9000), ("shared", 20), ("other1", 9000), ("other2", 20)]
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]

    by_writer: dict[str, list[int]] = {}
    for info in log_files(log_dir):
        for line in info.path.read_bytes().split(b"\n")[:-1]:
            record = records.parse_line(line)
            assert record is not None, f"torn line in {info.path.name}: {line[:80]!r}"
            if record.logger == "twooter.writer":
                name, number, padding = record.message.split(" ")
                assert set(padding) == {"x"} and len(padding) in sizes.values()
                assert record.instance == info.instance
                by_writer.setdefault(f"{info.instance}/{name}/{len(padding)}", []).append(int(number))
    assert sorted(name for info in log_files(log_dir) for name in [info.instance]) == ["other1", "other2", "shared"]
    assert len(by_writer) == 8
    for writer, numbers in by_writer.items():
        assert numbers == list(range(300)), writer


CRASHER = textwrap.dedent("""
    import sys
    from twooter import create_app
    from twooter.logwriter import capture
    app = create_app({"INSTANCE_PATH": sys.argv[1], "LOG_INSTANCE_NAME": "crash"})
    capture.install()
    print("hello from print", 42)
    sys.stdout.write("no newline yet")
    sys.stdout.flush()
    sys.stderr.write("a warning on stderr\\n")
    print("RuntimeError: looks like an error", file=sys.stderr)
    raise RuntimeError("the process dies here")
""")


def test_console_output_and_a_fatal_crash_end_up_in_the_log(tmp_path, log_dir):
    finished = subprocess.run([sys.executable, "-c", CRASHER, str(tmp_path / "instance")], cwd=PROJECT,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert finished.returncode != 0
    found = [(r.level, r.logger, r.message) for r in read_records(log_dir)]
    assert found[:4] == [
        ("INFO", "twooter.console.stdout", "hello from print 42"),
        ("INFO", "twooter.console.stdout", "no newline yet"),
        ("WARN", "twooter.console.stderr", "a warning on stderr"),
        ("ERROR", "twooter.console.stderr", "RuntimeError: looks like an error"),
    ]
    fatal = read_records(log_dir)[4]
    assert (fatal.level, fatal.logger) == ("FATAL", "twooter")
    assert "RuntimeError: the process dies here" in fatal.message
    assert fatal.exception.splitlines()[-1] == "RuntimeError: the process dies here"
    # The operator still sees it all on the terminal, through the console target.
    assert "FATAL|twooter||the process is stopping" in finished.stderr
    assert "hello from print 42" in finished.stderr


def test_serve_writes_its_start_up_lines_as_info(tmp_path):
    instance = tmp_path / "instance"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "twooter"), "serve", "--port", "0", "--threads", "2"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "TWOOTER_INSTANCE_PATH": str(instance), "TWOOTER_INSTANCE_NAME": "served",
             "DATABASE_URL": f"sqlite:///{instance / 'twooter.sqlite'}"},
    )
    try:
        deadline = time.monotonic() + 60
        lines: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline and not any("Serving on http://127.0.0.1:" in m for _, _, m in lines):
            time.sleep(0.2)
            lines = [(r.level, r.logger, r.message) for r in read_records(instance / "logs")] if (instance / "logs").exists() else []
        assert any(level == "INFO" and logger == "waitress" and text.startswith("Serving on http://127.0.0.1:")
                   for level, logger, text in lines), lines
        assert any(level == "INFO" and text.startswith("starting instance served") for level, _, text in lines)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert any(r.message == "stopping: received SIGTERM" for r in read_records(instance / "logs"))


def test_apps_in_one_process_write_to_their_own_folders_without_piling_up_handlers(tmp_path):
    first = create_app({"INSTANCE_PATH": tmp_path / "one", "LOG_INSTANCE_NAME": "a"})
    second = create_app({"INSTANCE_PATH": tmp_path / "two", "LOG_INSTANCE_NAME": "b"})
    for app, text in [(first, "to one"), (second, "to two")]:
        with app.app_context():
            logging.getLogger("twooter.where").info(text)
    assert messages(tmp_path / "one" / "logs", "twooter.where") == [("INFO", "to one")]
    assert messages(tmp_path / "two" / "logs", "twooter.where") == [("INFO", "to two")]
    ours = [h for h in logging.getLogger("twooter").handlers if h.__module__ == "twooter.logwriter.targets"]
    assert len(ours) == 2  # the default file and console targets, once


def test_many_apps_in_one_process_keep_few_log_files_open(tmp_path):
    from twooter.logwriter.targets import DescriptorPool

    def open_log_files() -> int:
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                found += os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path))
            except OSError:
                continue
        return found

    for n in range(DescriptorPool.MAX_OPEN * 2):
        app = create_app({"INSTANCE_PATH": tmp_path / f"app{n}", "LOG_INSTANCE_NAME": "many"})
        with app.app_context():
            logging.getLogger("twooter.many").info("app %d", n)
    assert open_log_files() <= DescriptorPool.MAX_OPEN
    # A closed file is opened again when its app writes once more.
    with create_app({"INSTANCE_PATH": tmp_path / "app0", "LOG_INSTANCE_NAME": "many"}).app_context():
        logging.getLogger("twooter.many").info("app 0 again")
    assert messages(tmp_path / "app0" / "logs", "twooter.many") == [("INFO", "app 0"), ("INFO", "app 0 again")]
