// Product form: rebuild the SKU table from the specification values as they are typed.
// Rows are matched by their combination of values, so prices, stock and SKU ids already
// entered survive a change. The server validates everything again.
(function () {
  "use strict";
  var form = document.getElementById("product-form");
  if (!form) return;
  var tbody = form.querySelector("[data-sku-rows]");
  var template = document.getElementById("sku-row-template");
  var names = form.querySelectorAll("[data-spec-name]");
  var valueBoxes = form.querySelectorAll("[data-spec-values]");
  var FIELDS = ["id", "price", "original", "stock", "code"];

  function splitValues(text) {
    var seen = [];
    (text || "").split(/[,，、;；\n\r]+/).forEach(function (part) {
      part = part.trim();
      if (part && seen.indexOf(part) === -1) seen.push(part);
    });
    return seen;
  }

  function usedSpecs() {
    var specs = [];
    for (var i = 0; i < names.length; i++) {
      var name = names[i].value.trim();
      var values = splitValues(valueBoxes[i].value);
      if (name || values.length) specs.push({ name: name, values: values });
    }
    return specs;
  }

  function combinations(lists) {
    return lists.reduce(function (acc, values) {
      var out = [];
      acc.forEach(function (prefix) {
        values.forEach(function (v) { out.push(prefix.concat([v])); });
      });
      return out;
    }, [[]]);
  }

  function currentRows() {
    var rows = {};
    var first = null;
    Array.prototype.forEach.call(tbody.rows, function (tr) {
      var data = {};
      FIELDS.forEach(function (f) {
        var input = tr.querySelector('[name$="-' + f + '"]');
        data[f] = input ? input.value : "";
      });
      rows[tr.getAttribute("data-key")] = data;
      if (!first) first = data;
    });
    return { byKey: rows, first: first };
  }

  function rebuild() {
    var specs = usedSpecs();
    // Wait until every specification has a name and at least one value.
    for (var i = 0; i < specs.length; i++) {
      if (!specs[i].name || !specs[i].values.length) return false;
    }
    var combos = combinations(specs.map(function (s) { return s.values; }));
    if (combos.length > 200) return false;
    var old = currentRows();
    tbody.textContent = "";
    combos.forEach(function (values, index) {
      var key = JSON.stringify(values);
      var data = old.byKey[key] || (specs.length === 0 ? old.first : null) || {};
      var tr = template.content.firstElementChild.cloneNode(true);
      tr.setAttribute("data-key", key);
      var cell = tr.querySelector(".spec-cell");
      values.forEach(function (v, k) {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "sku-" + index + "-v" + k;
        hidden.value = v;
        cell.insertBefore(hidden, cell.firstChild);
      });
      tr.querySelector('[data-f="label"]').textContent = values.join(" / ") || "默认规格";
      FIELDS.forEach(function (f) {
        var input = tr.querySelector('input[data-f="' + f + '"]');
        input.name = "sku-" + index + "-" + f;
        if (data[f] !== undefined && data[f] !== "") input.value = data[f];
      });
      tbody.appendChild(tr);
    });
    return true;
  }

  var timer = null;
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(rebuild, 250);
  }
  Array.prototype.forEach.call(names, function (el) { el.addEventListener("input", schedule); });
  Array.prototype.forEach.call(valueBoxes, function (el) { el.addEventListener("input", schedule); });

  var build = form.querySelector("[data-build-skus]");
  if (build) {
    build.addEventListener("click", function (event) {
      // With scripts the table is built here; the server path remains for no-script use.
      if (rebuild()) event.preventDefault();
    });
  }

  var apply = form.querySelector("[data-batch-apply]");
  if (apply) {
    apply.addEventListener("click", function () {
      form.querySelectorAll("[data-batch-field]").forEach(function (source) {
        var value = source.value.trim();
        if (!value) return;
        var field = source.getAttribute("data-batch-field");
        tbody.querySelectorAll('input[name$="-' + field + '"]').forEach(function (input) {
          input.value = value;
        });
      });
    });
  }
})();
