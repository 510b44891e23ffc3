// The break reminder of a batch that sets one (Batch.break_reminder_minutes; annotate.html
// includes this file and the notice only then).
//
// Continuous judging is counted in this browser, per user and batch (localStorage, so it
// survives the htmx swaps, reloads and a new tab): every few seconds the time since the last
// count is added while the judging page is visible and its annotator was active (a key, a
// click, a scroll or a submit) within PAUSE_MS. A pause that long (no activity, the tab
// hidden, or the page closed) ends the stretch: the count starts again from 0, because that
// was a break. After the batch's N minutes the notice (role="status": read out, never taking
// focus) suggests a break:
//   Continue      hides it; the count starts again, so it comes back after another N minutes.
//   Take a break  stops the count and the comparison's time on task (annotate.js's clock:
//                 the break's visible time is taken off the active_seconds it sends) until
//                 "Resume judging" or a submit.
// Nothing here touches an answer or moves the focus onto one; when the focused button
// disappears, the focus goes back to the comparison region, as annotate.js puts it.
(function () {
  "use strict";
  var PAUSE_MS = 5 * 60 * 1000;  // this long without activity (or hidden) is a break
  var TICK_MS = 5 * 1000;
  var notice = document.getElementById("break-reminder");
  if (!notice) return;
  var dueMs = parseInt(notice.dataset.minutes, 10) * 60 * 1000;
  if (!(dueMs > 0)) return;
  var storeKey = "factpair:break:" + (document.body.dataset.user || "") + ":" + notice.dataset.batch;

  function load() {
    try {
      var state = JSON.parse(window.localStorage.getItem(storeKey));
      if (state && typeof state.judged === "number" && typeof state.seen === "number") return state;
    } catch (e) { /* unreadable: start afresh */ }
    return { judged: 0, seen: Date.now(), onBreak: false };
  }
  function save(state) {
    try { window.localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* full or off */ }
  }

  var state = load();
  var lastActivity = Date.now();
  // The break's visible time during the comparison now on screen (performance.now(), as annotate.js).
  var breakMs = 0;
  var breakSince = null;

  function judging() {
    return Boolean(document.getElementById("judge-form"));
  }
  function startBreakClock() {
    if (breakSince === null && document.visibilityState === "visible") breakSince = performance.now();
  }
  function stopBreakClock() {
    if (breakSince !== null) {
      breakMs += performance.now() - breakSince;
      breakSince = null;
    }
  }
  function breakSeconds() {
    return (breakMs + (breakSince === null ? 0 : performance.now() - breakSince)) / 1000;
  }

  function show() {
    var focused = document.activeElement;
    var due = document.getElementById("break-due"), on = document.getElementById("break-on");
    due.hidden = state.onBreak || state.judged < dueMs;
    on.hidden = !state.onBreak;
    var box = notice.contains(focused) ? focused.closest(".break-box") : null;
    if (box && box.hidden) {  // the focused button went away: back to the comparison
      var work = document.getElementById("work");
      if (work) work.focus({ preventScroll: true });
    }
  }
  function restart(now) {
    state.judged = 0;
    state.seen = now;
  }

  // Count the time since the last tick if it was spent judging; a long gap is a pause.
  function tick() {
    state = load();  // another tab on this batch may have counted meanwhile
    var now = Date.now();
    var gap = now - state.seen;
    if (state.onBreak || gap < 0) {  // on a break, or the computer's clock went back
      state.seen = now;
    } else if (gap >= PAUSE_MS) {
      restart(now);  // no page counted for that long (closed, or the computer asleep)
    } else if (document.visibilityState === "visible" && judging()) {
      if (now - lastActivity >= PAUSE_MS) {
        restart(now);  // nobody active here for that long (or back to a tab hidden that long)
      } else {
        state.judged += gap;
        state.seen = now;
      }
    } else {
      state.seen = now;  // hidden, or not a comparison: not judging, and no reason to restart
    }
    save(state);
    show();
  }

  function activity() {
    lastActivity = Date.now();
  }
  ["keydown", "pointerdown", "wheel", "scroll", "submit"].forEach(function (type) {
    document.addEventListener(type, activity, { capture: true, passive: true });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      if (state.onBreak) startBreakClock();
      tick();  // back after PAUSE_MS or more: nobody was active, so the count starts again
    } else {
      tick();
      stopBreakClock();
    }
  });

  function takeBreak() {
    state.onBreak = true;
    save(state);
    startBreakClock();
    show();
  }
  function endBreak() {
    stopBreakClock();
    state.onBreak = false;
    restart(Date.now());
    activity();
    save(state);
    show();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("#break-take, #break-continue, #break-resume");
    if (!button) return;
    state = load();
    if (button.id === "break-take") {
      takeBreak();
    } else if (button.id === "break-continue") {
      restart(Date.now());
      save(state);
      show();
    } else {
      endBreak();
    }
  });

  // After annotate.js has written the comparison's active seconds (its submit listener was
  // added when its script ran, before DOMContentLoaded), take the break off them.
  document.addEventListener("DOMContentLoaded", function () {
    document.addEventListener("submit", function (event) {
      var field = event.target.querySelector && event.target.querySelector("input[name=active_seconds]");
      if (state.onBreak) endBreak();
      if (!field || field.value === "") return;
      var seconds = Math.max(0, parseFloat(field.value) - breakSeconds());
      field.value = seconds.toFixed(1);
    }, true);
  });
  // A new comparison: its own time on task, so no break time carried into it.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "work") {
      breakMs = 0;
      breakSince = null;
      if (state.onBreak) startBreakClock();
    }
  });

  if (Date.now() - state.seen >= PAUSE_MS) restart(Date.now());
  if (state.onBreak) startBreakClock();
  save(state);
  show();
  window.setInterval(tick, TICK_MS);
})();
