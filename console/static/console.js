/* kesu console: small progressive enhancements; every page works without it. */
(function () {
  "use strict";
  // mark the current section in the navigation
  var here = location.pathname.split("/").pop();
  document.querySelectorAll("nav a[data-nav]").forEach(function (a) {
    if (a.getAttribute("data-nav") === here) { a.classList.add("current"); }
  });
  // ask before destructive buttons
  document.querySelectorAll("button[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (ev) {
      if (!window.confirm(b.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  });
  // review rows: the button says whether it accepts or corrects the suggestion
  document.querySelectorAll("form.review").forEach(function (f) {
    var button = f.querySelector("button"), selects = f.querySelectorAll("select");
    var initial = Array.prototype.map.call(selects, function (s) { return s.value; }).join("|");
    selects.forEach(function (s) {
      s.addEventListener("change", function () {
        var now = Array.prototype.map.call(selects, function (x) { return x.value; }).join("|");
        button.textContent = now === initial ? "确认" : "更正";
      });
    });
  });
  // never submit a form twice
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function () {
      setTimeout(function () { f.querySelectorAll("button").forEach(function (b) { b.disabled = true; }); }, 0);
    });
  });
})();
