/* Distribution admin pages: the simulator's district picker, the settings page's level-3
   warning. Each part does nothing on pages without its elements. */
(function () {
  "use strict";
  var box = document.querySelector('[data-district-picker]');
  if (!box) return;
  var url = box.getAttribute('data-regions-url');
  var code = box.querySelector('[data-district-code]');
  var p = box.querySelector('[data-pick=province]'), c = box.querySelector('[data-pick=city]'), d = box.querySelector('[data-pick=district]');
  function fill(select, parent, placeholder) {
    select.innerHTML = '<option value="">' + placeholder + '</option>';
    return fetch(url + (parent ? '?parent=' + parent : ''), {credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.json() : {items: []}; })
      .then(function (data) {
        data.items.forEach(function (item) {
          var o = document.createElement('option'); o.value = item.code; o.textContent = item.name; select.appendChild(o);
        });
        select.hidden = false;
      });
  }
  // After a submit, show the district the code names (the code box keeps it anyway).
  var picked = (box.getAttribute('data-picked') || '').split(',');
  fill(p, '', '选择省份').then(function () {
    if (picked.length !== 3) return;
    p.value = picked[0];
    return fill(c, picked[0], '选择城市').then(function () {
      c.value = picked[1];
      return fill(d, picked[1], '选择区县');
    }).then(function () { d.value = picked[2]; });
  });
  p.addEventListener('change', function () { d.hidden = true; c.hidden = true; if (p.value) fill(c, p.value, '选择城市'); });
  c.addEventListener('change', function () { d.hidden = true; if (c.value) fill(d, c.value, '选择区县'); });
  d.addEventListener('change', function () { if (d.value) code.value = d.value; });
})();
(function () {
  var select = document.querySelector('[data-levels]');
  var warning = document.querySelector('[data-level3-warning]');
  if (!select || !warning) return;
  select.addEventListener('change', function () { warning.hidden = select.value !== '3'; });
})();
