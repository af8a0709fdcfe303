// Every admin page. Handlers are attached here, not in on* attributes, which the
// Content-Security-Policy (no 'unsafe-inline') would not run.
(function () {
  "use strict";
  // The language switch in the header submits itself when a language is picked.
  const select = document.querySelector("#language-switch select");
  if (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
})();
