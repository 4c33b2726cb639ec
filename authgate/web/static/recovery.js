// Print the recovery codes (a file, not an inline script: the CSP allows no inline code).
(function () {
  "use strict";
  var button = document.getElementById("print-codes");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
