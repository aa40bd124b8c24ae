// Print button of the print views (no inline script under the CSP).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var b = document.getElementById("print-button");
  if (b) {
    b.addEventListener("click", function () { window.print(); });
  }
});
