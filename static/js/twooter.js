// What the pages do in the browser beyond htmx's attributes. It lives in this
// file, not in the markup, so that the Content-Security-Policy can refuse
// inline script and eval (htmx runs with allowEval off).
(function () {
  "use strict";

  // The app answers a failed htmx request with a fragment for the flash area
  // (errors.py retargets it there); anything else that fails - a proxy's error
  // page, a dead server, no answer in time - gets a sentence of ours instead.
  var FLASHES = "#flashes";

  function aimedAtFlashes(xhr) {
    return xhr.getResponseHeader("HX-Retarget") === FLASHES;
  }

  function showProblem(text) {
    var area = document.querySelector(FLASHES);
    if (!area) {
      return;
    }
    var list = document.createElement("ul");
    list.className = "flashes error";
    list.setAttribute("role", "alert");
    var item = document.createElement("li");
    var label = document.createElement("strong");
    label.textContent = "Error:";
    item.append(label, " " + text);
    list.append(item);
    area.replaceChildren(list);
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.isError && aimedAtFlashes(event.detail.xhr)) {
      event.detail.shouldSwap = true;
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (aimedAtFlashes(xhr)) {
      return; // swapped in above: the app's own reason is on the page
    }
    var status = (xhr.status + " " + (xhr.statusText || "")).trim();
    showProblem("The server answered " + status + ". Please try again.");
  });

  document.addEventListener("htmx:sendError", function () {
    showProblem("The server could not be reached. Check your connection and try again.");
  });

  document.addEventListener("htmx:timeout", function () {
    showProblem("The server did not answer in time. Please try again.");
  });

  // A form marked data-reset-on-success empties once its request went through.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target;
    if (event.detail.successful && form.matches && form.matches("form[data-reset-on-success]")) {
      form.reset();
    }
  });

  // The "no message so far" placeholder goes once a twoot stands beside it.
  document.addEventListener("htmx:afterSwap", function () {
    var placeholder = document.getElementById("no-twoots");
    if (placeholder && placeholder.parentElement.querySelector("li.twoot")) {
      placeholder.remove();
    }
  });
})();
