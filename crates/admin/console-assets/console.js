// Hookline console: the condition builder and the portal hand-over. No framework, no build
// step; the pages work without it (the condition is then edited as JSON).
'use strict';

(function () {
  var FIELD_OPS = ['equals', 'not_equals', 'contains', 'not_contains', 'starts_with', 'ends_with',
    'less', 'more', 'regexp', 'is_email', 'is_numeric', 'is_empty', 'before', 'after', 'changed'];
  var LIST_OPS = ['has', 'has_not', 'equals', 'not_equals', 'contains', 'not_contains',
    'starts_with', 'ends_with', 'regexp'];
  var NO_OPERAND = ['is_email', 'is_numeric', 'is_empty', 'changed'];
  var SUBJECTS = [['field', 'profile field'], ['subprofile_field', 'subprofile field'],
    ['event', 'event field'], ['interest', 'interest'], ['tag', 'tag'], ['new_profile', 'new profile']];
  var LEAF_KEYS = ['field', 'subprofile_field', 'event', 'interest', 'tag', 'op', 'value', 'other_field'];
  var counter = 0;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') { e.textContent = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }

  function labelled(labelText, control) {
    var id = 'cb-' + (++counter);
    control.id = id;
    return el('span', { 'class': 'cb-part' }, [el('label', { 'for': id, text: labelText }), control]);
  }

  function select(options, value) {
    var s = el('select');
    options.forEach(function (o) {
      var v = Array.isArray(o) ? o[0] : o;
      var opt = el('option', { value: v, text: Array.isArray(o) ? o[1] : o });
      if (v === value) { opt.selected = true; }
      s.appendChild(opt);
    });
    return s;
  }

  // The JSON tree as the builder's model: groups {kind, children} and leaves.
  function toModel(c) {
    if (c === null || c === undefined) { return { kind: 'all', children: [] }; }
    if (c.all || c.any) {
      var kind = c.all ? 'all' : 'any';
      return { kind: kind, children: (c[kind] || []).map(toModel) };
    }
    if (c.not) { return { kind: 'not', children: [toModel(c.not)] }; }
    var subject = SUBJECTS.map(function (s) { return s[0]; }).filter(function (k) { return k in c; })[0] || 'new_profile';
    var extra = {};
    Object.keys(c).forEach(function (k) { if (LEAF_KEYS.indexOf(k) < 0) { extra[k] = c[k]; } });
    return {
      leaf: true, subject: subject, name: subject === 'new_profile' ? '' : String(c[subject]),
      op: c.op || 'equals', operandKind: 'other_field' in c ? 'other_field' : 'value',
      operand: 'other_field' in c ? c.other_field : (c.value === undefined ? '' : String(c.value)),
      extra: extra
    };
  }

  function fromModel(m) {
    if (!m.leaf) {
      var kids = m.children.map(fromModel);
      if (m.kind === 'not') { return kids.length ? { not: kids[0] } : null; }
      var out = {};
      out[m.kind] = kids;
      return out;
    }
    if (m.subject === 'new_profile') { return { op: 'new_profile' }; }
    var leaf = {};
    leaf[m.subject] = m.name;
    leaf.op = m.op;
    var list = m.subject === 'interest' || m.subject === 'tag';
    if (!list && NO_OPERAND.indexOf(m.op) < 0) {
      if (m.operandKind === 'other_field') {
        leaf.other_field = m.operand;
      } else {
        var numeric = (m.op === 'less' || m.op === 'more') && /^-?\d+(\.\d+)?$/.test(m.operand);
        leaf.value = numeric ? Number(m.operand) : m.operand;
      }
    }
    Object.keys(m.extra || {}).forEach(function (k) { leaf[k] = m.extra[k]; });
    return leaf;
  }

  function isList(subject) { return subject === 'interest' || subject === 'tag'; }

  function opsFor(subject) {
    if (subject === 'interest') { return LIST_OPS.concat(['gained', 'lost']); }
    if (subject === 'tag') { return LIST_OPS; }
    if (subject === 'field') { return FIELD_OPS; }
    return FIELD_OPS.filter(function (o) { return o !== 'changed'; });
  }

  function Builder(root, textarea) {
    this.root = root;
    this.textarea = textarea;
    this.model = null;
  }

  Builder.prototype.load = function () {
    var text = this.textarea.value.trim();
    try {
      var parsed = text ? JSON.parse(text) : null;
      var m = toModel(parsed);
      this.model = m.leaf ? { kind: 'all', children: [m] } : m;
      this.render();
    } catch (e) {
      this.root.textContent = 'The JSON below is not valid, so the builder cannot show it: ' + e.message;
    }
  };

  Builder.prototype.changed = function () {
    var json = this.model.children.length ? fromModel(this.model) : null;
    this.textarea.value = json === null ? '' : JSON.stringify(json, null, 2);
  };

  Builder.prototype.render = function () {
    this.root.textContent = '';
    this.root.appendChild(this.group(this.model, null));
    this.changed();
  };

  Builder.prototype.button = function (text, label, onClick) {
    var b = el('button', { type: 'button', 'class': 'secondary small', text: text, 'aria-label': label });
    b.addEventListener('click', onClick);
    return b;
  };

  Builder.prototype.group = function (g, parent) {
    var self = this;
    var kind = select([['all', 'all of (and)'], ['any', 'any of (or)'], ['not', 'not']], g.kind);
    kind.addEventListener('change', function () {
      g.kind = kind.value;
      if (g.kind === 'not') { g.children = g.children.slice(0, 1); }
      self.render();
    });
    var box = el('div', { 'class': 'cb-group', role: 'group', 'aria-label': 'condition group' });
    var head = el('div', { 'class': 'cb-head' }, [labelled('Match', kind)]);
    var canAdd = g.kind !== 'not' || g.children.length === 0;
    if (canAdd) {
      head.appendChild(this.button('+ condition', 'add a condition to this group', function () {
        g.children.push({ leaf: true, subject: 'field', name: '', op: 'equals', operandKind: 'value', operand: '', extra: {} });
        self.render();
      }));
      head.appendChild(this.button('+ group', 'add a group to this group', function () {
        g.children.push({ kind: 'any', children: [] });
        self.render();
      }));
    }
    if (parent) {
      head.appendChild(this.button('Remove group', 'remove this group', function () {
        parent.children.splice(parent.children.indexOf(g), 1);
        self.render();
      }));
    }
    box.appendChild(head);
    if (!parent && g.children.length === 0) {
      box.appendChild(el('p', { 'class': 'help', text: 'No condition: every event is sent. Add a condition to filter.' }));
    }
    g.children.forEach(function (c) { box.appendChild(c.leaf ? self.leaf(c, g) : self.group(c, g)); });
    return box;
  };

  Builder.prototype.leaf = function (l, parent) {
    var self = this;
    var row = el('div', { 'class': 'cb-leaf', role: 'group', 'aria-label': 'condition' });
    var subject = select(SUBJECTS, l.subject);
    subject.addEventListener('change', function () {
      var wasList = isList(l.subject);
      l.subject = subject.value;
      if (isList(l.subject) !== wasList || opsFor(l.subject).indexOf(l.op) < 0) { l.op = opsFor(l.subject)[0]; }
      self.render();
    });
    row.appendChild(labelled('Subject', subject));
    if (l.subject !== 'new_profile') {
      var name = el('input', { value: l.name, 'class': 'cb-name' });
      name.addEventListener('input', function () { l.name = name.value; self.changed(); });
      row.appendChild(labelled(l.subject === 'interest' || l.subject === 'tag' ? 'Name' : 'Field', name));
      var op = select(opsFor(l.subject), l.op);
      op.addEventListener('change', function () { l.op = op.value; self.render(); });
      row.appendChild(labelled('Operator', op));
      var list = l.subject === 'interest' || l.subject === 'tag';
      if (!list && NO_OPERAND.indexOf(l.op) < 0) {
        var kind = select([['value', 'value'], ['other_field', 'other field']], l.operandKind);
        kind.addEventListener('change', function () { l.operandKind = kind.value; self.changed(); });
        row.appendChild(labelled('Compare with', kind));
        var operand = el('input', { value: l.operand, 'class': 'cb-operand' });
        operand.addEventListener('input', function () { l.operand = operand.value; self.changed(); });
        row.appendChild(labelled('Operand', operand));
      }
    }
    row.appendChild(this.button('Remove', 'remove this condition', function () {
      parent.children.splice(parent.children.indexOf(l), 1);
      self.render();
    }));
    return row;
  };

  function startBuilder() {
    var root = document.getElementById('builder');
    var textarea = document.getElementById('f-conditions');
    if (!root || !textarea) { return; }
    var b = new Builder(root, textarea);
    textarea.addEventListener('change', function () { b.load(); });
    b.load();
  }

  // A portal link's page hands over to the webhooks with a navigation this site starts, so the
  // SameSite=Strict session cookie goes with it.
  function portalContinue() {
    var next = document.getElementById('portal-continue');
    if (next) { window.location.replace(next.getAttribute('href')); }
  }

  document.addEventListener('DOMContentLoaded', function () {
    startBuilder();
    portalContinue();
  });
})();
