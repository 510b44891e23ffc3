// Reading aids of the judging page: jump between a summary term's occurrences in the source
// (a click on a mark, or the next / previous keys), and the word-difference view. The keys come
// from the page (#page-keys, the criteria registry); nothing here touches an answer or the focus.
(function () {
  "use strict";
  // The key press's page action, read from the registry by annotate.js (loaded first).
  function pageAction(event) {
    return window.factpair && window.factpair.pageAction ? window.factpair.pageAction(event) : null;
  }

  // What is being stepped through: one term's occurrences (after a click) or every mark.
  var term = null, at = -1;
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "work") { term = null; at = -1; }
  });

  function sourceMarks() {
    var selector = "#source-text mark.term" + (term ? '[data-term="' + term + '"]' : "");
    return Array.prototype.slice.call(document.querySelectorAll(selector));
  }
  function say(text) {
    var status = document.getElementById("mark-status");
    if (status) status.textContent = text;
  }
  // The mark's own words, without the hidden "(not in the source)".
  function label(mark) { return "\u201c" + mark.firstChild.textContent.trim() + "\u201d"; }

  function step(by) {
    var marks = sourceMarks();
    var previous = document.querySelector("#source-text mark.current");
    if (previous) previous.classList.remove("current");
    if (!marks.length) {
      var named = term && document.querySelector('.summary mark[data-term="' + term + '"]');
      say(named ? label(named) + ": not found in the source" : "No highlighted terms in the source");
      return;
    }
    at = ((at + by) % marks.length + marks.length) % marks.length;
    var mark = marks[at];
    mark.classList.add("current");
    var pane = document.querySelector("#work .source");
    if (pane) {
      var top = mark.getBoundingClientRect().top - pane.getBoundingClientRect().top + pane.scrollTop;
      pane.scrollTo({ top: Math.max(0, top - pane.clientHeight / 3), behavior: "instant" });
    }
    say(label(mark) + ": " + (at + 1) + " of " + marks.length + (term ? " in the source" : " highlights in the source"));
  }

  document.addEventListener("click", function (event) {
    var mark = event.target.closest && event.target.closest("#work mark.term[data-term]");
    if (mark) {
      var inSource = mark.closest("#source-text");
      term = mark.dataset.term;
      // A click in the source steps on from there; in a summary it starts at the first.
      at = inSource ? sourceMarks().indexOf(mark) - 1 : -1;
      step(1);
      return;
    }
    if (event.target.closest && event.target.closest("#word-diff")) toggleDiff();
  });

  function toggleDiff() {
    var button = document.getElementById("word-diff");
    if (!button) return;
    var on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", on ? "true" : "false");
    ["left", "right"].forEach(function (side) {
      var diff = document.getElementById(side + "-diff"), plain = document.getElementById(side + "-summary");
      if (diff && plain) { diff.hidden = !on; plain.hidden = on; }
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("textarea, input[type=text], input[type=password], select, [contenteditable]")) return;
    if (!document.getElementById("judge-form")) return;
    var dialog = document.getElementById("guidelines-dialog");
    if (dialog && dialog.open) return;
    var action = pageAction(event);
    if (action === "next_mark" || action === "previous_mark") {
      if (!document.getElementById("mark-status")) return;  // highlights are off
      event.preventDefault();
      step(action === "next_mark" ? 1 : -1);
    } else if (action === "word_diff" && document.getElementById("word-diff")) {
      event.preventDefault();
      toggleDiff();
    }
  });
})();
