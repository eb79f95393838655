/* Distribution admin pages: the settings page's level-3 warning (the simulator's pickers
   are static/js/admin-picker.js). */
(function () {
  var select = document.querySelector('[data-levels]');
  var warning = document.querySelector('[data-level3-warning]');
  if (!select || !warning) return;
  select.addEventListener('change', function () { warning.hidden = select.value !== '3'; });
})();
