/* The agent application form: pick a province, city or district for the chosen level. */
(function () {
  "use strict";
  var form = document.querySelector('[data-agent-apply]');
  if (!form) return;
  var url = form.getAttribute('data-regions-url');
  var picks = {};
  ['province', 'city', 'district'].forEach(function (k) { picks[k] = form.querySelector('[data-pick="' + k + '"]'); });
  var code = form.querySelector('[data-region-code]');
  var chosen = form.querySelector('[data-chosen]');
  var order = ['province', 'city', 'district'];
  function level() { var r = form.querySelector('input[name=level]:checked'); return r ? r.value : 'district'; }
  function fill(select, parent, placeholder) {
    select.innerHTML = '<option value="">' + placeholder + '</option>';
    return fetch(url + (parent ? '?parent=' + parent : ''), {credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.json() : {items: []}; })
      .then(function (data) {
        data.items.forEach(function (item) {
          var o = document.createElement('option'); o.value = item.code; o.textContent = item.name; select.appendChild(o);
        });
      });
  }
  function update() {
    var depth = order.indexOf(level());
    order.forEach(function (k, i) { picks[k].hidden = i > depth || (i > 0 && !picks[order[i - 1]].value); });
    var target = picks[order[depth]];
    code.value = target.value;
    var names = [];
    for (var i = 0; i <= depth; i++) { var s = picks[order[i]]; if (s.value) names.push(s.options[s.selectedIndex].textContent); }
    chosen.textContent = code.value ? '已选择：' + names.join(' ') : '';
  }
  picks.province.addEventListener('change', function () {
    picks.district.innerHTML = '<option value="">选择区县</option>';
    (picks.province.value ? fill(picks.city, picks.province.value, '选择城市') : Promise.resolve()).then(update);
  });
  picks.city.addEventListener('change', function () {
    (picks.city.value ? fill(picks.district, picks.city.value, '选择区县') : Promise.resolve()).then(update);
  });
  picks.district.addEventListener('change', update);
  form.querySelectorAll('input[name=level]').forEach(function (r) { r.addEventListener('change', update); });
  form.addEventListener('submit', function (e) { update(); if (!code.value) { e.preventDefault(); chosen.textContent = '请选择代理区域'; } });
  fill(picks.province, '', '选择省份').then(update);
})();
