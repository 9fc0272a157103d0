// Keyboard shortcut of the read-only page; it works without this file.
// "/" focuses the search box, as on most tools people know.
"use strict";
document.addEventListener("keydown", function (e) {
  if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
  var t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
  var box = document.querySelector("[data-search]");
  if (box) { e.preventDefault(); box.focus(); box.select(); }
});
