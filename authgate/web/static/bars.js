// Width of the summary bars from data attributes (no inline styles under the CSP).
document.querySelectorAll(".bar-fill").forEach(function (el) {
  el.style.width = Math.max(0, Math.min(100, Number(el.dataset.width) || 0)) + "%";
});
