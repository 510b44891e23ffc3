// Keyboard-first judging and time on task. Plain HTML forms work without this file.
(function () {
  "use strict";
  // The keyboard map comes with the page (from the criteria registry): key -> [criterion, answer].
  function keyMap() {
    var data = document.getElementById("judging-keys");
    return data ? JSON.parse(data.textContent) : {};
  }
  // The page's other keys, from the same registry: action -> key (a capital means with Shift).
  function pageKeys() {
    var data = document.getElementById("page-keys");
    return data ? JSON.parse(data.textContent) : {};
  }
  // The action of a key press, if any: Shift+N reads "N", plain n reads "n", Enter "enter".
  function pageAction(event) {
    var pressed = event.key.length === 1 ? event.key : event.key.toLowerCase();
    var keys = pageKeys();
    for (var action in keys) {
      if (Object.prototype.hasOwnProperty.call(keys, action) && keys[action] === pressed) return action;
    }
    return null;
  }
  // For the page's other scripts (aids.js), loaded after this one.
  window.factpair = Object.assign(window.factpair || {}, { pageAction: pageAction });

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
  // Focus rests on the comparison region, never on an answer: a key meant to scroll must not
  // be able to change a radio (browsers move a radio group's choice with the arrow keys).
  function focusComparison() {
    var work = document.getElementById("work");
    if (work && work.classList.contains("work")) work.focus({ preventScroll: true });
  }
  // Undo leaves the held comparison for a while: the answers already chosen on it and its time
  // so far stay in this tab (sessionStorage) and come back with it, whether the revision is
  // saved or cancelled. A stash for any other comparison is stale and dropped.
  var HELD = "factpair:held";
  // (Not the "revising" class: htmx keeps the old element's class on the new one until settled.)
  function judging() {
    var work = document.getElementById("work");
    var ok = work && document.getElementById("judge-form") && !document.getElementById("revise-note");
    return ok ? work : null;
  }
  function stashHeld() {
    var work = judging();
    if (!work) return;
    var answers = {};
    work.querySelectorAll("#judge-form input[type=radio]:checked").forEach(function (input) {
      answers[input.name] = input.value;
    });
    var held = { assignment: work.dataset.assignment, answers: answers, seconds: activeSeconds() };
    try { window.sessionStorage.setItem(HELD, JSON.stringify(held)); } catch (e) { /* storage off */ }
  }
  function restoreHeld() {
    var work = judging(), held = null;
    if (!work) return;  // still revising: keep the stash
    try { held = JSON.parse(window.sessionStorage.getItem(HELD)); } catch (e) { held = null; }
    if (!held) return;
    window.sessionStorage.removeItem(HELD);
    if (held.assignment !== work.dataset.assignment) return;
    Object.keys(held.answers || {}).forEach(function (name) {
      var group = work.querySelectorAll('#judge-form input[type=radio][name="' + CSS.escape(name) + '"]');
      var chosen = Array.prototype.some.call(group, function (input) { return input.checked; });
      group.forEach(function (input) {
        if (!chosen && input.value === held.answers[name]) input.checked = true;
      });
    });
    if (held.seconds >= 0) active += held.seconds * 1000;
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#undo-button")) stashHeld();
  }, true);
  document.addEventListener("DOMContentLoaded", restoreHeld);

  document.addEventListener("htmx:afterSwap", function (event) {
    var id = event.detail.target && event.detail.target.id;
    if (id === "work") {
      restartClock();
      restoreHeld();
      focusComparison();
    } else if (id === "skip-panel") {
      var reason = document.getElementById("skip-reason");
      if (reason) reason.focus();  // a refused reason: the panel stays open, the box focused
    }
  });
  document.addEventListener("DOMContentLoaded", focusComparison);

  // The undo control goes when its window ends (the server refuses a late change anyway).
  function armUndo() {
    var box = document.getElementById("undo");
    var seconds = box ? parseFloat(box.dataset.seconds) : NaN;
    if (!(seconds >= 0)) return;
    window.setTimeout(function () { if (box.isConnected) box.remove(); }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", armUndo);
  document.addEventListener("htmx:afterSwap", armUndo);

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
  // Keys that scroll the source pane, wherever the focus is (outside a text field): a line for
  // the arrows, most of a screen for the page keys and Space (Shift+Space goes back).
  function scrollSource(event) {
    var pane = document.querySelector("#work .source");
    if (!pane) return false;
    var line = 40, page = Math.max(line, pane.clientHeight * 0.9);
    var by = {
      ArrowDown: line, ArrowUp: -line, PageDown: page, PageUp: -page,
      " ": event.shiftKey ? -page : page
    }[event.key];
    if (by === undefined) return false;
    pane.scrollBy({ top: by, behavior: "instant" });
    return true;
  }
  function openSkipPanel(kind) {
    var panel = document.querySelector("#work details.skip");
    if (!panel) return;
    panel.open = true;
    panel.dataset.kind = kind;
    var reason = document.getElementById("skip-reason");
    if (reason) reason.focus();
  }
  function closeSkipPanel(panel) {
    panel.open = false;
    focusComparison();
  }
  document.addEventListener("keydown", function (event) {
    var panel = event.target.closest && event.target.closest("details.skip");
    if (panel && event.target.id === "skip-reason") {
      // In the reason box: Ctrl+Enter sends with the button its key chose, Escape closes.
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        var button = document.getElementById(panel.dataset.kind === "problem" ? "report-button" : "skip-button");
        button.click();  // a click, so htmx sends the button's kind as a form would
      } else if (event.key === "Escape") {
        event.preventDefault();
        closeSkipPanel(panel);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var form = document.getElementById("judge-form");
    var dialog = document.getElementById("guidelines-dialog");
    if (!(dialog && dialog.open)) {
      // Undo (reopen the last submission) and, while changing it, Escape to go back unchanged.
      var undo = document.getElementById("undo-button");
      var cancel = document.getElementById("cancel-revise");
      if (undo && pageAction(event) === "undo") { event.preventDefault(); undo.click(); return; }
      if (cancel && event.key === "Escape") { event.preventDefault(); cancel.click(); return; }
    }
    if (!form || (dialog && dialog.open)) return;
    var tag = event.target.tagName;
    var onControl = tag === "BUTTON" || tag === "A" || tag === "SUMMARY";
    // Arrow keys and Space would change a focused radio: they scroll instead (Left/Right do nothing).
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      if (event.target.type === "radio") event.preventDefault();
      return;
    }
    if (!(event.key === " " && onControl) && scrollSource(event)) {
      event.preventDefault();
      return;
    }
    var key = event.key.toLowerCase();
    var keys = keyMap();
    var action = pageAction(event);
    if (Object.prototype.hasOwnProperty.call(keys, key)) {
      var input = form.querySelector('input[name="' + keys[key][0] + '"][value="' + keys[key][1] + '"]');
      if (input) { input.checked = true; event.preventDefault(); }
    } else if (action === "submit" && !onControl) {
      event.preventDefault();
      form.requestSubmit();
    } else if (action === "guidelines" && dialog) {
      event.preventDefault();
      dialog.showModal();
      dialog.scrollTop = 0;
    } else if (action === "skip" || action === "report") {
      event.preventDefault();
      openSkipPanel(action === "skip" ? "skip" : "problem");
    }
  });
  // Text size, remembered per user in this browser (several annotators may share one).
  var SIZES = [0.875, 1, 1.125, 1.25, 1.5, 1.75];
  function sizeKey() { return "factpair:text-size:" + (document.body.dataset.user || ""); }
  function storedSize() {
    var i = parseInt(window.localStorage.getItem(sizeKey()), 10);
    return i >= 0 && i < SIZES.length ? i : 1;
  }
  function applySize(i) {
    document.documentElement.style.setProperty("--text-scale", String(SIZES[i]));
    var smaller = document.getElementById("text-smaller"), larger = document.getElementById("text-larger");
    if (smaller) smaller.disabled = i === 0;
    if (larger) larger.disabled = i === SIZES.length - 1;
  }
  document.addEventListener("DOMContentLoaded", function () { applySize(storedSize()); });
  document.addEventListener("htmx:afterSwap", function () { applySize(storedSize()); });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("#text-smaller, #text-larger");
    if (!button) return;
    var i = Math.min(SIZES.length - 1, Math.max(0, storedSize() + (button.id === "text-larger" ? 1 : -1)));
    window.localStorage.setItem(sizeKey(), String(i));
    applySize(i);
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("#guidelines-link");
    var dialog = document.getElementById("guidelines-dialog");
    if (link && dialog) { event.preventDefault(); dialog.showModal(); dialog.scrollTop = 0; }
  });
})();
