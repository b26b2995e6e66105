// learnloop dashboard: the little the pages do in the browser. Served as a
// file from /ui/static/app.js (the Content-Security-Policy forbids inline
// script). Everything works without it; it only saves clicks.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The workspace switcher submits when a workspace is picked.
  document.querySelectorAll("select.autosubmit").forEach(function (s) {
    s.addEventListener("change", function () {
      if (s.form) s.form.submit();
    });
  });
  // Buttons that change state ask once more.
  document.querySelectorAll("form.inline button:not([disabled])").forEach(function (b) {
    var label = b.textContent.trim();
    if (label === "Reject" || label === "Roll back" || label === "Run now") {
      b.form.addEventListener("submit", function (e) {
        if (!window.confirm(label + "?")) e.preventDefault();
      });
    }
  });
});
