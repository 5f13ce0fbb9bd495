// waq console: the pages work without this file; it only adds the copy
// buttons (shown when it runs).
document.querySelectorAll("button[data-copy]").forEach(function (b) {
  var input = document.getElementById(b.dataset.copy);
  if (!input || !navigator.clipboard) return;
  b.hidden = false;
  b.addEventListener("click", function () {
    navigator.clipboard.writeText(input.value).then(function () {
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = "Copy"; }, 1500);
    });
  });
});
document.querySelectorAll("input.copyable").forEach(function (i) {
  i.addEventListener("focus", function () { i.select(); });
});
