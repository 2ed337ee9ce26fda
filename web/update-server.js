// update-server admin pages: row actions, the live device filter and the row refresh.
// Plain JavaScript, no build step; the pages work without it (filter via the form).
(function () {
  'use strict';

  var body = document.body;
  var prefix = body.dataset.prefix || '';
  var csrf = body.dataset.csrf || '';
  var refresh = parseInt(body.dataset.refresh || '0', 10) || 0;
  var adminUrl = prefix + '/admin/admin.php';

  // A mode=ui command as POST with the session's CSRF token.
  function ui(cmd, params) {
    return fetch(adminUrl + '?mode=ui&cmd=' + encodeURIComponent(cmd), {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'X-CSRF-Token': csrf,
        'Content-Type': 'application/x-www-form-urlencoded'
      },
      body: new URLSearchParams(params).toString()
    }).then(function (r) {
      if (r.status === 403) {
        // session gone: back to the login form
        window.location.reload();
      }
      return r.json().catch(function () { return null; }).then(function (json) {
        return { ok: r.ok, status: r.status, json: json };
      });
    });
  }

  // ---- filter -------------------------------------------------------------------------

  var input = document.getElementById('filter');
  var count = document.getElementById('count');
  var table = document.getElementById('devicestable');

  function escapeRe(s) {
    return s.replace(/[.\\+*?[^\]$(){}=!<>|:\-\/]/g, '\\$&');
  }

  function normalizeMac(w) {
    if (w.length === 12 && w.slice(0, 6) === '009033' && /^[0-9a-fA-F]+$/.test(w)) {
      return w.match(/../g).join('-');
    }
    return w;
  }

  // The same rule as the server: every word must match a whole word of a field.
  function matcher(text) {
    var words = text.split(/\s+/).filter(Boolean).map(function (w) {
      var p = escapeRe(normalizeMac(w)).replace(/\\\*/g, '.*').replace(/\\\?/g, '.');
      return new RegExp('\\b' + p + '\\b', 'i');
    });
    return function (tr) {
      var f = tr.getAttribute('data-f') || '';
      return words.every(function (re) { return re.test(f); });
    };
  }

  function rows() {
    return table ? table.querySelectorAll('tr[data-sn]') : [];
  }

  function updateCount() {
    if (!count || !table) return;
    var all = rows();
    var shown = 0;
    for (var i = 0; i < all.length; i++) if (!all[i].hidden) shown++;
    var total = parseInt(count.dataset.total || '0', 10);
    var server = input ? (input.dataset.server || '') : '';
    var text = shown + ' of ' + total + ' devices';
    if (input && input.value.trim() !== '') text += ' match';
    if (server.trim() !== '' && input && input.value.trim() !== server.trim()) {
      text += ' (press Enter to search all devices)';
    }
    count.textContent = text;
  }

  function applyFilter() {
    if (!input) return;
    var m = matcher(input.value);
    var all = rows();
    for (var i = 0; i < all.length; i++) {
      var show = m(all[i]);
      if (all[i].hidden === show) all[i].hidden = !show;
    }
    updateCount();
    var url = new URL(window.location.href);
    if (input.value.trim() === '') url.searchParams.delete('filter');
    else url.searchParams.set('filter', input.value);
    window.history.replaceState(null, '', url.toString());
  }

  function applyFilterTo(tr) {
    if (input && input.value.trim() !== '') tr.hidden = !matcher(input.value)(tr);
  }

  var timer = null;
  if (input) {
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(applyFilter, 120);
    });
  }

  function setFilter(value) {
    if (!input) return;
    input.value = value;
    applyFilter();
    input.focus();
  }

  // ---- rows ---------------------------------------------------------------------------

  // Whether the user is working in a row (a chosen file, a focused field): not replaced then.
  function busy(tr) {
    var files = tr.querySelectorAll('input[type=file]');
    for (var i = 0; i < files.length; i++) if (files[i].files && files[i].files.length) return true;
    var a = document.activeElement;
    return !!(a && a !== document.body && tr.contains(a) && a.tagName === 'INPUT');
  }

  function replaceRow(tr, html) {
    var open = {};
    tr.querySelectorAll('details[open]').forEach(function (d) { open[d.dataset.part] = true; });
    var tpl = document.createElement('template');
    tpl.innerHTML = html;
    var fresh = tpl.content.querySelector('tr');
    if (!fresh) return;
    fresh.querySelectorAll('details').forEach(function (d) {
      if (open[d.dataset.part]) d.open = true;
    });
    if (observer) observer.unobserve(tr);
    tr.replaceWith(fresh);
    applyFilterTo(fresh);
    watch(fresh);
  }

  function refreshRow(tr) {
    var sn = tr.dataset.sn;
    return ui('updatestatus', { sn: sn }).then(function (r) {
      if (r.status === 404) {
        tr.remove();
        updateCount();
      } else if (r.ok && typeof r.json === 'string') {
        replaceRow(tr, r.json);
      }
    });
  }

  document.addEventListener('click', function (ev) {
    var fl = ev.target.closest('button.fl[data-filter]');
    if (fl) {
      setFilter(fl.dataset.filter);
      return;
    }
    var btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    var tr = btn.closest('tr[data-sn]');
    if (!tr) return;
    var sn = tr.dataset.sn;
    switch (btn.dataset.act) {
      case 'refresh':
        refreshRow(tr);
        break;
      case 'touch':
        ui('touchstatus', { sn: sn }).then(function (r) {
          if (r.json === true) refreshRow(tr);
        });
        break;
      case 'delete':
        if (window.confirm('Delete all status information of "' + sn + '"?')) {
          ui('delstatus', { sn: sn }).then(function (r) {
            if (r.json === true) {
              tr.remove();
              var total = count ? parseInt(count.dataset.total || '0', 10) : 0;
              if (count && total > 0) count.dataset.total = String(total - 1);
              updateCount();
            }
          });
        }
        break;
      case 'delfile':
        if (window.confirm('Delete "' + btn.dataset.file + '"?')) {
          ui('delfile', { sn: sn, file: btn.dataset.file }).then(function () {
            refreshRow(tr);
          });
        }
        break;
    }
  });

  // ---- automatic refresh of the rows on screen (status/@refresh seconds) -------------

  var visible = new Set();
  var observer = null;
  if (refresh > 0 && table && 'IntersectionObserver' in window) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) {
        if (en.isIntersecting) visible.add(en.target.dataset.sn);
        else visible.delete(en.target.dataset.sn);
      });
    });
    rows().forEach(function (tr) { observer.observe(tr); });
    setInterval(function () {
      if (document.hidden || visible.size === 0) return;
      var list = Array.from(visible).slice(0, 200);
      ui('updaterows', { sn: list.join(',') }).then(function (r) {
        if (!r.ok || !r.json) return;
        Object.keys(r.json).forEach(function (sn) {
          var tr = table.querySelector('tr[data-sn="' + CSS.escape(sn) + '"]');
          if (!tr) return;
          if (r.json[sn] === null) {
            visible.delete(sn);
            tr.remove();
          } else if (!busy(tr)) {
            replaceRow(tr, r.json[sn]);
          }
        });
        updateCount();
      });
    }, refresh * 1000);
  }

  function watch(tr) {
    if (observer) observer.observe(tr);
  }
})();
