// Keyboard shortcuts: a key press clicks the app's own button (so it does exactly what the button does, through
// its callback), unless the button is missing or disabled. SHORTCUTS is filled in by ui/shortcuts.py.
(function () {
  "use strict";
  const SHORTCUTS = __SHORTCUTS__;
  if (window.__builderShortcuts) {
    window.__builderShortcuts.table = SHORTCUTS;
    return;
  }
  const state = (window.__builderShortcuts = { table: SHORTCUTS });

  function editable(target) {
    return !!target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName || ""));
  }

  function matches(shortcut, event) {
    return (
      event.key.toLowerCase() === shortcut.key &&
      (event.ctrlKey || event.metaKey) === true &&
      event.shiftKey === shortcut.shift &&
      !event.altKey
    );
  }

  function onKey(event) {
    if (!(event.ctrlKey || event.metaKey) || editable(event.target)) return;
    const shortcut = state.table.find((s) => matches(s, event));
    if (!shortcut) return;
    const button = document.querySelector(".st-key-" + shortcut.button + " button");
    event.preventDefault();
    if (button && !button.disabled) button.click();
  }

  // The board and the graph are iframes of this origin: a key pressed there (after a drag, a click on a node)
  // never reaches this document, so each frame's document gets the same listener.
  function watch(frame) {
    if (frame.__builderShortcuts) return;
    frame.__builderShortcuts = true;
    const attach = function () {
      try {
        frame.contentWindow.document.addEventListener("keydown", onKey, true);
      } catch (error) {
        // another origin: its keys stay its own
      }
    };
    frame.addEventListener("load", attach);
    attach();
  }

  document.addEventListener("keydown", onKey, true);
  document.querySelectorAll("iframe").forEach(watch);
  new MutationObserver(function () {
    document.querySelectorAll("iframe").forEach(watch);
  }).observe(document.body, { childList: true, subtree: true });
})();
