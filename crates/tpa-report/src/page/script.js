// Sorting of tables and the metric switch of heatmaps. The page reads fully
// without it: every heatmap is shown and tables keep their order.
(function () {
  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v === null) { return cell.textContent; }
    return v === "" ? NaN : parseFloat(v);
  }
  function sort(table, column, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    rows.sort(function (a, b) {
      var x = key(a.cells[column]), y = key(b.cells[column]);
      if (typeof x === "number" || typeof y === "number") {
        if (isNaN(x)) { return isNaN(y) ? 0 : 1; }
        if (isNaN(y)) { return -1; }
        return ascending ? x - y : y - x;
      }
      return ascending ? String(x).localeCompare(y) : String(y).localeCompare(x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.addEventListener("click", function () { sort(table, i, th); });
    });
  });
  document.querySelectorAll(".switch").forEach(function (box) {
    var select = box.querySelector("select");
    var panels = box.querySelectorAll(".panel");
    function show() {
      panels.forEach(function (p) { p.hidden = p.getAttribute("data-key") !== select.value; });
    }
    select.hidden = false;
    select.addEventListener("change", show);
    show();
  });
  document.documentElement.setAttribute("data-js", "ready");
})();
