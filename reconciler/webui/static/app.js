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

// A filter form leaves its empty fields out of the address, so that the
// address names only the filters set (the page ignores empty ones too).
document.addEventListener("submit", function (e) {
  var f = e.target;
  if (!f || !f.classList || !f.classList.contains("filters")) return;
  Array.prototype.forEach.call(f.elements, function (el) {
    if (el.name && el.value === "") el.disabled = true;
  });
});
// Back to a page whose fields were disabled: enable them again.
window.addEventListener("pageshow", function () {
  Array.prototype.forEach.call(document.querySelectorAll("form.filters [disabled]"), function (el) { el.disabled = false; });
});
