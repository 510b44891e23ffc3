// "Copy" buttons: <button type="button" data-copy="ID" data-copy-status="ID2"> copies the text
// of the field ID to the clipboard and says so in the live region ID2. Where the clipboard is
// not allowed (no permission, an insecure origin, an old browser), it selects the whole text
// instead, so that Ctrl+C (Cmd+C) copies it, and says that.
(function () {
  "use strict";

  function selectAll(field) {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
  }

  async function copy(button) {
    const field = document.getElementById(button.dataset.copy);
    const status = document.getElementById(button.dataset.copyStatus);
    if (!field) return;
    const say = (text) => { if (status) status.textContent = text; };
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(field.value);
      say("Copied to the clipboard.");
    } catch (error) {
      selectAll(field);
      say("The clipboard is not available here: the paragraph is selected, press Ctrl+C (⌘C on a Mac) to copy it.");
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-copy]");
    if (button) copy(button);
  });
})();
