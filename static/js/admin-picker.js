/* Admin pickers (templates/admin/_pickers.html): a person by nickname, phone or code; a
   region by province / city / district. The form still posts an id (a hidden input), so
   the server's checks are unchanged. Each part does nothing on pages without pickers. */
(function () {
  "use strict";

  function people(box) {
    var q = box.querySelector('[data-picker-q]');
    var hidden = box.querySelector('[data-picker-value]');
    var list = box.querySelector('[data-picker-list]');
    var url = box.getAttribute('data-url');
    var kind = box.getAttribute('data-kind') || 'user';
    // From now on the hidden input is what the form posts; typed text (a number, a code)
    // is copied into it until a hit is chosen, so typing an id still works.
    hidden.name = hidden.getAttribute('data-name');
    q.removeAttribute('name');
    var chosen = hidden.value ? q.value : null;
    var timer = null, seq = 0, active = -1;

    function close() { list.hidden = true; list.innerHTML = ''; active = -1; }
    function choose(item) {
      hidden.value = item.id;
      q.value = item.label;
      chosen = item.label;
      box.classList.add('picked');
      close();
      hidden.dispatchEvent(new Event('change', {bubbles: true}));
    }
    function show(items) {
      list.innerHTML = '';
      if (!items.length) {
        var none = document.createElement('span');
        none.className = 'picker-empty';
        none.textContent = '没有找到，换个昵称、手机号或推广码试试';
        list.appendChild(none);
      }
      items.forEach(function (item, i) {
        var b = document.createElement('button');
        b.type = 'button';
        b.className = 'picker-item';
        b.setAttribute('role', 'option');
        b.setAttribute('data-id', item.id);
        var strong = document.createElement('strong');
        strong.textContent = item.label;
        var small = document.createElement('span');
        small.className = 'muted small';
        small.textContent = item.detail;
        b.appendChild(strong);
        b.appendChild(small);
        b.addEventListener('mousedown', function (e) { e.preventDefault(); });
        b.addEventListener('click', function () { choose(item); });
        list.appendChild(b);
      });
      list.hidden = false;
    }
    function search() {
      var text = q.value.trim();
      if (!text) { close(); return; }
      var mine = ++seq;
      fetch(url + '?kind=' + encodeURIComponent(kind) + '&q=' + encodeURIComponent(text), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {items: []}; })
        .then(function (data) { if (mine === seq) show(data.items || []); })
        .catch(function () {});
    }
    q.addEventListener('input', function () {
      box.classList.remove('picked');
      if (q.value !== chosen) hidden.value = q.value.trim();
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    q.addEventListener('keydown', function (e) {
      var items = list.querySelectorAll('.picker-item');
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if (!items.length) return;
        e.preventDefault();
        active = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
        items.forEach(function (el, i) { el.classList.toggle('active', i === active); });
      } else if (e.key === 'Enter' && !list.hidden && items.length) {
        e.preventDefault();
        items[active < 0 ? 0 : active].click();
      } else if (e.key === 'Escape') {
        close();
      }
    });
    q.addEventListener('blur', function () { setTimeout(close, 150); });
    if (chosen) box.classList.add('picked');
  }

  function regions(box) {
    var url = box.getAttribute('data-regions-url');
    var depth = box.getAttribute('data-depth') || 'any';
    var code = box.querySelector('[data-region-code]');
    var nameOut = box.querySelector('[data-region-name]');
    var p = box.querySelector('[data-pick=province]');
    var c = box.querySelector('[data-pick=city]');
    var d = box.querySelector('[data-pick=district]');
    code.classList.add('js-hidden');
    function fill(select, parent, placeholder) {
      select.innerHTML = '<option value="">' + placeholder + '</option>';
      return fetch(url + (parent ? '?parent=' + parent : ''), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {items: []}; })
        .then(function (data) {
          data.items.forEach(function (item) {
            var o = document.createElement('option');
            o.value = item.code;
            o.textContent = item.name;
            select.appendChild(o);
          });
          select.hidden = data.items.length === 0;
        });
    }
    function update() {
      var deepest = d.value || (depth === 'any' ? (c.value || p.value) : '');
      code.value = deepest;
      var names = [p, c, d].filter(function (s) { return !s.hidden && s.value; })
        .map(function (s) { return s.options[s.selectedIndex].textContent; });
      nameOut.textContent = names.join(' ');
    }
    var picked = (box.getAttribute('data-picked') || '').split(',').filter(Boolean);
    fill(p, '', '选择省份').then(function () {
      if (!picked.length) return;
      p.value = picked[0];
      if (picked.length < 2) return update();
      return fill(c, picked[0], '选择城市').then(function () {
        c.value = picked[1];
        if (picked.length < 3) return update();
        return fill(d, picked[1], '选择区县').then(function () { d.value = picked[2]; update(); });
      });
    });
    p.addEventListener('change', function () {
      d.hidden = true; d.value = ''; c.hidden = true; c.value = '';
      update();
      if (p.value) fill(c, p.value, '选择城市');
    });
    c.addEventListener('change', function () {
      d.hidden = true; d.value = '';
      update();
      if (c.value) fill(d, c.value, '选择区县');
    });
    d.addEventListener('change', update);
  }

  document.querySelectorAll('[data-picker]').forEach(people);
  document.querySelectorAll('[data-region-picker]').forEach(regions);
})();
