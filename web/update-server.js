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

  // ---- filter and "show more": the server filters and pages ---------------------------

  var input = document.getElementById('filter');
  var count = document.getElementById('count');
  var table = document.getElementById('devicestable');
  var summaryBox = document.getElementById('summary');
  var current = input ? input.value : '';
  var seq = 0;

  function rows() {
    return table ? table.querySelectorAll('tr[data-sn]') : [];
  }

  // the sort order of the page (sort=, kept in the URL and in every rows request)
  function currentSort() {
    return new URL(window.location.href).searchParams.get('sort') || '';
  }

  function rowsRequest(params) {
    var sort = currentSort();
    if (sort) params.sort = sort;
    return fetch(adminUrl + '?mode=ui&cmd=rows&' + new URLSearchParams(params).toString(), {
      credentials: 'same-origin'
    }).then(function (r) {
      if (r.status === 403) window.location.reload();
      return r.ok ? r.json() : null;
    });
  }

  function applyFilter() {
    if (!input || !table) return;
    var value = input.value;
    var mine = ++seq;
    rowsRequest({ filter: value }).then(function (j) {
      if (!j || mine !== seq) return; // a newer filter is on its way
      current = value;
      if (observer) {
        observer.disconnect();
        visible.clear();
      }
      table.innerHTML = j.rows;
      if (summaryBox) summaryBox.innerHTML = j.summary;
      if (count) count.textContent = j.count;
      watchAll();
      var url = new URL(window.location.href);
      url.searchParams.delete('rows');
      url.searchParams.delete('msg');
      if (value.trim() === '') url.searchParams.delete('filter');
      else url.searchParams.set('filter', value);
      window.history.replaceState(null, '', url.toString());
    });
  }

  var timer = null;
  if (input) {
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(applyFilter, 200);
    });
    input.form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearTimeout(timer);
      applyFilter();
    });
  }

  function setFilter(value) {
    if (!input) return;
    input.value = value;
    applyFilter();
    input.focus();
  }

  function showMore(tr) {
    var a = tr.querySelector('a[data-after]');
    if (!a || tr.dataset.loading) return;
    tr.dataset.loading = '1';
    var mine = seq;
    rowsRequest({ filter: current, after: a.dataset.after }).then(function (j) {
      if (!j || mine !== seq || !tr.parentNode) return;
      tr.insertAdjacentHTML('afterend', j.rows);
      tr.remove();
      watchAll();
    });
  }

  // load the next rows when the "show more" row comes into view
  var moreObserver = 'IntersectionObserver' in window
    ? new IntersectionObserver(function (entries) {
      entries.forEach(function (en) { if (en.isIntersecting) showMore(en.target); });
    }, { rootMargin: '400px' })
    : null;

  function watchAll() {
    if (!table) return;
    rows().forEach(watch);
    if (moreObserver) table.querySelectorAll('tr.more').forEach(function (tr) { moreObserver.observe(tr); });
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
    watch(fresh);
  }

  function refreshRow(tr) {
    var sn = tr.dataset.sn;
    return ui('updatestatus', { sn: sn }).then(function (r) {
      if (r.status === 404) {
        tr.remove();
      } else if (r.ok && typeof r.json === 'string') {
        replaceRow(tr, r.json);
      }
    });
  }

  // the page's URL with the current filter and sort and `extra` parameters
  function pageUrl(extra) {
    var url = new URL(adminUrl, window.location.href);
    url.searchParams.set('mode', 'status');
    var f = input ? input.value : '';
    if (f.trim() !== '') url.searchParams.set('filter', f);
    var sort = currentSort();
    if (sort) url.searchParams.set('sort', sort);
    Object.keys(extra || {}).forEach(function (k) { url.searchParams.set(k, extra[k]); });
    return url;
  }

  // a message after an action (msg=) is shown once: not again on reload
  (function () {
    var url = new URL(window.location.href);
    if (url.searchParams.has('msg')) {
      url.searchParams.delete('msg');
      window.history.replaceState(null, '', url.toString());
    }
  })();

  // the upload of a signed certificate comes back to this view, with a message
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains('upload')) return;
    var action = new URL(form.getAttribute('action'), window.location.href);
    var back = pageUrl({ msg: 'cert-uploaded' });
    // the server accepts only plain URL characters in `proceed`, up to 512 bytes
    var query = back.search.slice(1).replace(/[*!'()]/g, function (c) {
      return '%' + c.charCodeAt(0).toString(16).toUpperCase();
    });
    if (query.length > 500) query = 'mode=status&msg=cert-uploaded';
    action.searchParams.set('proceed', 'admin/admin.php?' + query);
    form.setAttribute('action', action.pathname + action.search);
  }, true);

  document.addEventListener('click', function (ev) {
    var dismiss = ev.target.closest('.banner .dismiss');
    if (dismiss) {
      ev.preventDefault();
      dismiss.closest('.banner').remove();
      return;
    }
    var sortLink = ev.target.closest('thead a.sort[data-sort]');
    if (sortLink && input) {
      // the filter may have changed since the page was rendered
      ev.preventDefault();
      var to = pageUrl();
      to.searchParams.set('sort', sortLink.dataset.sort);
      window.location.href = to.toString();
      return;
    }
    var fl = ev.target.closest('button.fl[data-filter]');
    if (fl) {
      setFilter(fl.dataset.filter);
      return;
    }
    var more = ev.target.closest('tr.more a[data-after]');
    if (more) {
      ev.preventDefault();
      showMore(more.closest('tr'));
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
            if (r.json === true) tr.remove();
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

  // ---- row parts loaded when opened (message log, backups, snippets) -----------------

  function loadPart(d) {
    var tr = d.closest('tr[data-sn]');
    if (!tr || d.dataset.loaded) return;
    d.dataset.loaded = '1';
    ui('rowpart', { sn: tr.dataset.sn, part: d.dataset.part }).then(function (r) {
      if (r.ok && typeof r.json === 'string') {
        var box = document.createElement('div');
        box.className = 'part';
        box.innerHTML = r.json;
        d.appendChild(box);
      } else {
        delete d.dataset.loaded;
      }
    });
  }

  // "toggle" does not bubble: listen while it travels down
  document.addEventListener('toggle', function (ev) {
    var d = ev.target;
    if (d && d.tagName === 'DETAILS' && d.open && d.dataset.part) loadPart(d);
  }, true);

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
      });
    }, refresh * 1000);
  }

  function watch(tr) {
    if (observer) observer.observe(tr);
  }

  watchAll();
})();
