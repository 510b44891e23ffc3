// Keyboard-first judging and time on task. Plain HTML forms work without this file.
(function () {
  "use strict";
  // The keyboard map comes with the page (from the criteria registry): key -> [criterion, answer].
  function keyMap() {
    var data = document.getElementById("judging-keys");
    return data ? JSON.parse(data.textContent) : {};
  }

  // Active time: seconds this comparison was on screen in a visible tab.
  var active = 0;
  var visibleSince = document.visibilityState === "visible" ? performance.now() : null;
  function activeSeconds() {
    var now = performance.now();
    return (active + (visibleSince === null ? 0 : now - visibleSince)) / 1000;
  }
  function restartClock() {
    active = 0;
    visibleSince = document.visibilityState === "visible" ? performance.now() : null;
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      visibleSince = performance.now();
    } else if (visibleSince !== null) {
      active += performance.now() - visibleSince;
      visibleSince = null;
    }
  });
  // Capture phase: runs before htmx serialises the form.
  document.addEventListener("submit", function (event) {
    var field = event.target.querySelector && event.target.querySelector("input[name=active_seconds]");
    if (field) field.value = activeSeconds().toFixed(1);
  }, true);
  document.addEventListener("htmx:afterSwap", function () {
    restartClock();
    var form = document.getElementById("judge-form");
    var first = form && form.querySelector("input[type=radio]");
    if (first) first.focus({ preventScroll: true });
  });

  // A failed request (503 while the database restarts, a dropped network) keeps the form and
  // its answers on screen and says what to do. Submitting again is safe: if the lost request was
  // stored after all (its commit's answer lost), the same answers come back as already stored.
  function showProblem(message) {
    var box = document.getElementById("form-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    showProblem(status === 503
      ? "The server is busy or restarting: nothing was lost. Please press Enter again in a few seconds."
      : "Something went wrong (error " + status + "). Please press Enter again; if it keeps failing, reload the page.");
  });
  document.addEventListener("htmx:sendError", function () {
    showProblem("The connection dropped: nothing was lost. Please press Enter again when you are back online.");
  });

  function typing(target) {
    return target.closest && target.closest("textarea, input[type=text], input[type=password], select, [contenteditable]");
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var form = document.getElementById("judge-form");
    var dialog = document.getElementById("guidelines-dialog");
    if (!form || (dialog && dialog.open)) return;
    var key = event.key.toLowerCase();
    var keys = keyMap();
    if (Object.prototype.hasOwnProperty.call(keys, key)) {
      var input = form.querySelector('input[name="' + keys[key][0] + '"][value="' + keys[key][1] + '"]');
      if (input) { input.checked = true; input.focus({ preventScroll: true }); event.preventDefault(); }
    } else if (key === "enter" && !(event.target.tagName === "BUTTON" || event.target.tagName === "A" || event.target.tagName === "SUMMARY")) {
      event.preventDefault();
      form.requestSubmit();
    } else if (key === "g" && dialog) {
      event.preventDefault();
      dialog.showModal();
    }
  });
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("#guidelines-link");
    var dialog = document.getElementById("guidelines-dialog");
    if (link && dialog) { event.preventDefault(); dialog.showModal(); }
  });
})();
