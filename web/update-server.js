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

  // ---- folds (charts, rollouts): one line each, opened on demand, remembered ----------

  function foldKey(d) { return 'update-server.fold.' + d.dataset.fold; }

  function applyFolds(root) {
    (root || document).querySelectorAll('details.fold[data-fold]').forEach(function (d) {
      var v = null;
      try { v = window.localStorage.getItem(foldKey(d)); } catch (e) { /* storage off */ }
      if (v === 'open') d.open = true;
      else if (v === 'closed') d.open = false;
    });
  }

  document.addEventListener('toggle', function (ev) {
    var d = ev.target;
    if (!d || d.tagName !== 'DETAILS' || !d.classList.contains('fold') || !d.dataset.fold) return;
    try { window.localStorage.setItem(foldKey(d), d.open ? 'open' : 'closed'); } catch (e) { /* storage off */ }
  }, true);

  applyFolds(document);

  // ---- what an action did: a message at the top, announced --------------------------

  function say(text, error) {
    var main = document.querySelector('main');
    if (!main) return;
    var box = document.getElementById('actionmsg');
    if (!box) {
      box = document.createElement('p');
      box.id = 'actionmsg';
      box.setAttribute('role', 'status');
      box.setAttribute('aria-live', 'polite');
      main.insertBefore(box, main.firstChild);
    }
    box.className = 'flash' + (error ? ' error' : '');
    box.textContent = text;
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

  var chartsBox = document.getElementById('charts');
  var lastPush = 0;

  // the filter's URL: kept in the history, so Back returns to the previous filter
  function remember(value, how) {
    var url = new URL(window.location.href);
    url.searchParams.delete('rows');
    url.searchParams.delete('msg');
    url.searchParams.delete('msgsn');
    if (value.trim() === '') url.searchParams.delete('filter');
    else url.searchParams.set('filter', value);
    if (url.toString() === window.location.href) return;
    var now = Date.now();
    // typing goes on: one history entry for the words typed in one go
    if (how === 'replace' || (how === 'typing' && now - lastPush < 2000)) {
      window.history.replaceState({ filter: value }, '', url.toString());
    } else {
      window.history.pushState({ filter: value }, '', url.toString());
    }
    lastPush = now;
  }

  function showCount(text, error) {
    if (!count) return;
    count.textContent = text;
    count.classList.toggle('error', !!error);
  }

  // how: 'typing', 'push' (a click, Enter), 'none' (Back/Forward)
  function applyFilter(how) {
    if (!input || !table) return;
    var value = input.value;
    var mine = ++seq;
    rowsRequest({ filter: value }).then(function (j) {
      if (!j || mine !== seq) return; // a newer filter is on its way
      if (j.error) {
        // a filter still being typed: the rows stay until it can be read
        showCount(String(j.error), true);
        return;
      }
      if (how === 'typing' && j.matched === 0 && value.trim() !== '') {
        // a word still being typed matches nothing yet: the rows, the summary and the
        // address stay (no blank table, no jump); Enter shows the empty result
        showCount('no device matches \u201c' + value + '\u201d yet (Enter: show the empty result)', true);
        return;
      }
      current = value;
      if (observer) {
        observer.disconnect();
        visible.clear();
      }
      table.innerHTML = j.rows || '';
      if (summaryBox && typeof j.summary === 'string') summaryBox.innerHTML = j.summary;
      if (chartsBox && typeof j.charts === 'string') {
        chartsBox.innerHTML = j.charts;
        applyFolds(chartsBox);
      }
      showCount(j.count || '', false);
      document.querySelectorAll('a.csv').forEach(function (csv) {
        var cu = new URL(csv.getAttribute('href'), window.location.href);
        if (value.trim() === '') cu.searchParams.delete('filter');
        else cu.searchParams.set('filter', value);
        csv.setAttribute('href', cu.pathname + cu.search);
      });
      watchAll();
      if (how !== 'none') remember(value, how || 'push');
    });
  }

  window.addEventListener('popstate', function () {
    if (!input) return;
    var f = new URL(window.location.href).searchParams.get('filter') || '';
    if (f === input.value) return;
    input.value = f;
    applyFilter('none');
  });

  // "/" goes to the filter (not while typing somewhere else)
  document.addEventListener('keydown', function (ev) {
    if (ev.key !== '/' || !input || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    ev.preventDefault();
    input.focus();
    input.select();
  });

  var timer = null;
  if (input) {
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { applyFilter('typing'); }, 300);
    });
    input.form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearTimeout(timer);
      applyFilter('push');
    });
  }

  function setFilter(value) {
    if (!input) return;
    input.value = value;
    applyFilter('push');
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
    if (!tr.tagName) {
      // the device's own page: load it again, with the message of what was done
      var again = adminUrl + '?mode=device&sn=' + encodeURIComponent(sn) +
        (tr.msg ? '&msg=' + tr.msg + '&msgsn=' + encodeURIComponent(sn) : '');
      window.setTimeout(function () { window.location.href = again; }, 300);
      return Promise.resolve();
    }
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
    // the device's own page: the server's way back (that page, with the message) stays
    if (form.closest('[data-page="device"]')) return;
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

  // final actions ask first (forms with data-confirm: rollout abort, deletions)
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    var q = form && form.dataset ? form.dataset.confirm : null;
    if (q && !window.confirm(q)) ev.preventDefault();
  });

  document.addEventListener('click', function (ev) {
    var back = ev.target.closest('a[data-back]');
    if (back && window.history.length > 1) {
      ev.preventDefault();
      window.history.back();
      return;
    }
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
    var fl = ev.target.closest('a.fl[data-filter], button.fl[data-filter]');
    if (fl && input && !(ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button)) {
      ev.preventDefault();
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
    var tr = btn.closest('[data-sn]');
    if (!tr) return;
    var sn = tr.dataset.sn;
    if (tr.tagName !== 'TR') {
      // the device's own page: after an action, the page again (or the list after a delete)
      tr = {
        dataset: { sn: sn },
        remove: function () {
          window.location.href = adminUrl + '?mode=status&msg=status-deleted&msgsn=' + encodeURIComponent(sn);
        }
      };
    }
    switch (btn.dataset.act) {
      case 'refresh':
        refreshRow(tr);
        break;
      case 'touch':
        if (window.confirm('Mark "' + sn + '" as seen now? It no longer counts as missing until it stays away again.')) {
          ui('touchstatus', { sn: sn }).then(function (r) {
            if (r.json === true) {
              say('Device ' + sn + ' marked as seen now.');
              tr.msg = 'status-touched';
              refreshRow(tr);
            } else {
              say('Could not mark ' + sn + ' as seen; see the server log.', true);
            }
          });
        }
        break;
      case 'delete':
        if (window.confirm('Delete all status information of "' + sn + '"? This cannot be undone.')) {
          ui('delstatus', { sn: sn }).then(function (r) {
            if (r.json === true) {
              tr.remove();
              say('Status of ' + sn + ' deleted.');
            } else {
              say('Could not delete the status of ' + sn + '; see the server log.', true);
            }
          });
        }
        break;
      case 'delfile':
        if (window.confirm('Delete "' + btn.dataset.file + '"? This cannot be undone.')) {
          ui('delfile', { sn: sn, file: btn.dataset.file }).then(function (r) {
            if (r.json === true) say('File ' + btn.dataset.file + ' deleted.');
            else say('Could not delete ' + btn.dataset.file + '; see the server log.', true);
            tr.msg = r.json === true ? 'file-deleted' : 'failed';
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
