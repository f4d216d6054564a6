/* evalsuite report.html: filters for the item overview, and the per-example browser of each item.
   Everything the verdict says is in the static page; this script only adds ways to look at it.
   Text from the run is only ever set as textContent, never parsed as HTML. */
(function () {
  "use strict";
  var PAGE = window.matchMedia && window.matchMedia("(max-width: 640px)").matches ? 10 : 25, CELL = 180;
  var UNPARSED = 1, ERROR = 2, WRONG = 4;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function short(text, n) {
    if (text === null || text === undefined) return "";
    text = String(text);
    return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
  }
  function flat(text) { return text === null || text === undefined ? "" : String(text).replace(/\s+/g, " ").trim(); }
  function num(v) { return v === null || v === undefined ? "" : (Number.isInteger(v) ? String(v) : v.toFixed(3)); }

  /* ---------------------------------------------------------------- overview filters */
  function setupFilters() {
    var bar = document.getElementById("filters");
    if (!bar) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll("table.overview tbody tr"));
    var status = document.getElementById("filter-status");
    function apply(tag) {
      var shown = 0;
      rows.forEach(function (row) {
        var tags = (row.getAttribute("data-tags") || "").split(" ");
        var visible = tag === "all" || tags.indexOf(tag) >= 0;
        row.hidden = !visible;
        var section = document.getElementById(row.getAttribute("data-section"));
        if (section) section.hidden = !visible;
        if (visible) shown++;
      });
      Array.prototype.forEach.call(bar.querySelectorAll("button"), function (b) {
        b.setAttribute("aria-pressed", String(b.getAttribute("data-tag") === tag));
      });
      status.textContent = tag === "all" ? "" : "showing " + shown + " of " + rows.length + " items";
    }
    Array.prototype.forEach.call(bar.querySelectorAll("button"), function (b) {
      b.addEventListener("click", function () { apply(b.getAttribute("data-tag")); });
    });
    bar.hidden = false;
  }

  /* ---------------------------------------------------------------- per-example browser */
  function Explorer(box, data) {
    this.box = box;
    this.data = data;
    this.rows = data.rows;
    this.order = data.rows.map(function (_, i) { return i; });
    this.view = this.order;
    this.page = 0;
    this.sort = null;
    this.open = {};
    this.haystack = null;
    this.build();
  }
  Explorer.prototype.build = function () {
    var self = this;
    this.search = el("input", { type: "search", placeholder: "search id, prompt, answer, expected\u2026",
                                "aria-label": "search examples" });
    var options = [["all", "all examples"]];
    var counts = { wrong: 0, flipped: 0, unparsed: 0, error: 0 };
    this.rows.forEach(function (r) {
      if (r[5] & WRONG) counts.wrong++;
      if (r[8] >= 0) counts.flipped++;
      if (r[5] & UNPARSED) counts.unparsed++;
      if (r[5] & ERROR) counts.error++;
    });
    [["wrong", "wrong"], ["flipped", "flipped vs baseline"], ["unparsed", "unparsed"], ["error", "call errors"]]
      .forEach(function (o) { if (counts[o[0]]) options.push([o[0], o[1] + " (" + counts[o[0]] + ")"]); });
    this.filter = el("select", { "aria-label": "show" }, options.map(function (o) {
      return el("option", { value: o[0], text: o[1] });
    }));
    this.count = el("span", { cls: "muted" });
    this.table = el("table", { cls: "rows stack" });
    this.pager = el("div", { cls: "pager" });
    this.box.textContent = "";
    this.box.appendChild(el("div", { cls: "controls" }, [this.search, this.filter, this.count]));
    this.box.appendChild(el("div", { cls: "scroll" }, [this.table]));
    this.box.appendChild(this.pager);
    var timer = null;
    this.search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { self.refilter(); }, 150);
    });
    this.filter.addEventListener("change", function () { self.refilter(); });
    this.refilter();
  };
  Explorer.prototype.text = function (i) {
    var r = this.rows[i];
    return [r[0], r[1], r[2], r[3], r[4], r[7]].map(function (v) { return v === null ? "" : String(v); })
      .join("\u0000").toLowerCase();
  };
  Explorer.prototype.refilter = function () {
    var self = this, query = this.search.value.trim().toLowerCase(), show = this.filter.value;
    if (query && !this.haystack) this.haystack = this.rows.map(function (_, i) { return self.text(i); });
    this.view = this.order.filter(function (i) {
      var r = self.rows[i];
      if (show === "wrong" && !(r[5] & WRONG)) return false;
      if (show === "flipped" && r[8] < 0) return false;
      if (show === "unparsed" && !(r[5] & UNPARSED)) return false;
      if (show === "error" && !(r[5] & ERROR)) return false;
      return !query || self.haystack[i].indexOf(query) >= 0;
    });
    this.page = 0;
    this.render();
  };
  Explorer.prototype.sortBy = function (column) {
    var rows = this.rows;
    var dir = this.sort && this.sort.column === column && this.sort.dir === 1 ? -1 : 1;
    this.sort = { column: column, dir: dir };
    var key = column === "id" ? function (i) { return rows[i][0]; }
      : column === "answer" ? function (i) { return rows[i][3] === null ? "" : String(rows[i][3]); }
      : function (i) { var v = rows[i][6][column]; return v === null || v === undefined ? NaN : v; };
    var collator = new Intl.Collator(undefined, { numeric: true });
    this.order = rows.map(function (_, i) { return i; }).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x === "number") {
        if (isNaN(x)) return isNaN(y) ? a - b : 1;
        if (isNaN(y)) return -1;
        return (x - y) * dir || a - b;
      }
      return collator.compare(x, y) * dir || a - b;
    });
    this.refilter();
  };
  Explorer.prototype.header = function () {
    var self = this, data = this.data;
    function sortable(label, column, cls) {
      var mark = self.sort && self.sort.column === column ? (self.sort.dir === 1 ? " \u25b2" : " \u25bc") : "";
      var button = el("button", { type: "button", text: label + mark, title: "sort by " + label });
      button.addEventListener("click", function () { self.sortBy(column); });
      return el("th", cls ? { cls: cls } : null, [button]);
    }
    var cells = [sortable("example", "id"), el("th", { text: data.prompt ? "prompt (what differs)" : "input" }),
                 el("th", { text: "expected" }), el("th", { text: "prediction" }), sortable("answer", "answer")];
    data.metrics.forEach(function (name, j) { cells.push(sortable(name, j, "num")); });
    cells.push(el("th", { text: "" }));
    return el("thead", null, [el("tr", null, cells)]);
  };
  Explorer.prototype.row = function (i) {
    var self = this, r = this.rows[i], data = this.data;
    var flags = [];
    if (r[5] & ERROR) flags.push(el("span", { cls: "flag error", text: "error" }));
    else if (r[5] & UNPARSED) flags.push(el("span", { cls: "flag unparsed", text: "unparsed" }));
    else if (r[5] & WRONG) flags.push(el("span", { cls: "flag wrong", text: "wrong" }));
    if (r[8] >= 0) flags.push(el("span", { cls: "flag flipped", text: "flipped" }));
    var toggle = el("button", { type: "button", "aria-expanded": String(!!this.open[i]), text: this.open[i] ? "hide" : "show" });
    toggle.addEventListener("click", function () { self.open[i] = !self.open[i]; self.render(); });
    var cells = [
      el("td", { "data-label": "example" }, [el("code", { text: r[0] })].concat(flags)),
      el("td", { cls: "text", "data-label": data.prompt ? "prompt" : "input", text: short(flat(r[1]), CELL) }),
      el("td", { cls: "text", "data-label": "expected", text: short(r[2], CELL) }),
      el("td", { cls: "text", "data-label": "prediction", text: short(r[4], CELL) }),
      el("td", { cls: "text", "data-label": "answer", text: r[7] && r[3] === null ? short(r[7], CELL) : short(r[3], CELL) })
    ];
    data.metrics.forEach(function (name, j) { cells.push(el("td", { cls: "num", "data-label": name, text: num(r[6][j]) })); });
    cells.push(el("td", null, [toggle]));
    return el("tr", { cls: r[8] >= 0 ? "flipped" : "" }, cells);
  };
  Explorer.prototype.detail = function (i) {
    var r = this.rows[i], data = this.data, parts = [];
    if (data.prompt) {
      parts.push(el("h4", { text: "rendered prompt" }));
      if (data.prefix) parts.push(el("details", null, [
        el("summary", { text: "the start every example shares (" + data.prefix.length.toLocaleString() + " characters)" }),
        el("pre", { text: data.prefix })]));
      parts.push(el("pre", { text: r[1] === null ? "" : r[1] }));
    } else {
      parts.push(el("h4", { text: "input" }), el("pre", { text: r[1] || "" }));
    }
    parts.push(el("h4", { text: "answer" }), el("pre", { text: r[3] === null ? "(no answer)" : r[3] }));
    parts.push(el("p", null, [el("strong", { text: "expected: " }), String(r[2] === null ? "-" : r[2])]));
    parts.push(el("p", null, [el("strong", { text: "prediction: " }), String(r[4] === null ? "-" : r[4])]));
    if (r[7]) parts.push(el("p", null, [el("strong", { text: "error: " }), r[7]]));
    if (r[8] >= 0) {
      var f = data.flips[r[8]];
      parts.push(el("h4", { text: "flipped against the baseline: " + f.metric + " " + f.before + " \u2192 " + f.after }));
      parts.push(el("p", { cls: "diff" }, f.diff.length ? f.diff.map(function (d) {
        return d[0] === 0 ? d[1] : el(d[0] < 0 ? "del" : "ins", { text: d[1] });
      }) : [String(f.baseline) + " \u2192 " + String(f.answer)]));
    }
    var cell = el("td", { colspan: String(6 + data.metrics.length) }, parts);
    return el("tr", { cls: "detail" }, [cell]);
  };
  Explorer.prototype.render = function () {
    var self = this, total = this.view.length, pages = Math.max(1, Math.ceil(total / PAGE));
    this.page = Math.min(this.page, pages - 1);
    var start = this.page * PAGE, shown = this.view.slice(start, start + PAGE);
    var body = el("tbody");
    shown.forEach(function (i) {
      body.appendChild(self.row(i));
      if (self.open[i]) body.appendChild(self.detail(i));
    });
    this.table.textContent = "";
    this.table.appendChild(this.header());
    this.table.appendChild(body);
    this.count.textContent = total === this.rows.length ? total.toLocaleString() + " examples"
      : total.toLocaleString() + " of " + this.rows.length.toLocaleString() + " examples";
    this.pager.textContent = "";
    if (pages > 1) {
      var prev = el("button", { type: "button", text: "\u2039 previous" }), next = el("button", { type: "button", text: "next \u203a" });
      prev.disabled = this.page === 0;
      next.disabled = this.page >= pages - 1;
      prev.addEventListener("click", function () { self.page--; self.render(); });
      next.addEventListener("click", function () { self.page++; self.render(); });
      this.pager.appendChild(prev);
      this.pager.appendChild(el("span", { text: "rows " + (start + 1).toLocaleString() + "\u2013" +
        Math.min(total, start + PAGE).toLocaleString() + " of " + total.toLocaleString() + " \u00b7 page " +
        (this.page + 1).toLocaleString() + " of " + pages.toLocaleString() }));
      this.pager.appendChild(next);
    }
  };

  function setupExplorers() {
    Array.prototype.forEach.call(document.querySelectorAll("details.examples"), function (details) {
      function start() {
        if (details.getAttribute("data-ready")) return;
        details.setAttribute("data-ready", "1");
        var source = document.getElementById(details.getAttribute("data-source"));
        var box = details.querySelector(".explorer");
        try {
          new Explorer(box, JSON.parse(source.textContent));
        } catch (e) {
          box.textContent = "The example browser could not start (" + e + "); report.json has every example.";
        }
      }
      if (details.open) start();
      details.addEventListener("toggle", function () { if (details.open) start(); });
    });
  }

  setupFilters();
  setupExplorers();
  document.documentElement.setAttribute("data-ready", "1");
})();
