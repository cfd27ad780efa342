(function(){"use strict";
/* The accounts table of report.html. The server renders the first page; this script renders every
 * page from imfReport.rows (one array per account: 0 id, 1 state, 2 user1, 3 host1, 4 user2,
 * 5 host2, 6 attempts, 7 max_attempts, 8 folders, 9 copied, 10 copied text, 11 bytes, 12 bytes
 * text, 13 skipped, 14 failed, 15 duration ms, 16 duration text, 17 updated ms, 18 updated text,
 * 19 error class, 20 error code, 21 error text, 22 verify verdict, 23 messages on the source and
 * 24 on the destination at that verify (-1 unknown), 25 verified at, 26 last synced ms, 27 its
 * text, 28 attention rank, 29 copied with identity not certain), and sorts and filters all of them, not only the rows on screen; unsorted,
 * those that need attention come first (failed, partial, running ...). Text goes in through
 * textContent only. */
var t = document.getElementById("accounts"), D = window.imfReport;
if (!t || !D)
	return;
var body = t.tBodies[0], heads = t.tHead.rows[0].cells, R = D.rows, S = D.states;
var size = 100, page = 0, view = [], sortKey = null, sortDir = 1, q = "";
var num = {
	id : 0,
	state : 1,
	attempts : 6,
	folders : 8,
	copied : 9,
	bytes : 11,
	skipped : 13,
	failed : 14,
	uncertain : 29,
	duration : 15,
	updated : 17,
	synced : 26,
	rank : 28
};
var low = [];
function acct(r)
{
	return r[2] + "@" + r[3] + "\u2192" + r[4] + "@" + r[5];
}
function errText(r)
{
	return r[19] || r[21] ? r[19] + " " + r[21] : "";
}
for (var i = 0; i < R.length; i++)
	low.push(
	    (R[i][0] + " " + acct(R[i]) + " " + S[R[i][1]] + " " + R[i][19] + " " + R[i][20] + " " + R[i][21] + " " + R[i][22])
		.toLowerCase());
function key(r, k)
{
	if (k in num)
		return r[num[k]];
	if (k === "account")
		return acct(r).toLowerCase();
	if (k === "error")
		return errText(r).toLowerCase();
	if (k === "verify")
		return r[22];
	if (k === "complete")
		return r[23] < 0 ? -1 : r[23] - r[24];
	return r[0];
}
function el(tag, cls, text)
{
	var e = document.createElement(tag);
	if (cls)
		e.className = cls;
	if (text !== undefined)
		e.textContent = String(text);
	return e;
}
function td(cls, v, text)
{
	var e = el("td", cls, text);
	if (v !== null)
		e.setAttribute("data-v", String(v));
	return e;
}
function row(r)
{
	var tr = document.createElement("tr"), st = S[r[1]];
	tr.setAttribute("data-job", String(r[0]));
	tr.setAttribute("data-state", st);
	tr.appendChild(td("num", r[0], r[0]));
	var a = el("td", "acct"), src = el("div", "src", r[2] + "@" + r[3]), dst = el("div", "dst");
	dst.appendChild(el("span", "arrow", "\u2192"));
	dst.appendChild(document.createTextNode(r[4] + "@" + r[5]));
	a.appendChild(src);
	a.appendChild(dst);
	tr.appendChild(a);
	var s = td(null, r[1]);
	s.appendChild(el("span", "pill s-" + st, st));
	tr.appendChild(s);
	tr.appendChild(td("num", r[6], r[6] + "/" + r[7]));
	tr.appendChild(td("num c-folders", null, r[8]));
	tr.appendChild(td("num c-copied", r[9], r[10]));
	tr.appendChild(td("num c-bytes", r[11], r[12]));
	tr.appendChild(td("num c-skipped", null, r[13]));
	tr.appendChild(td("num c-failed", null, r[14]));
	tr.appendChild(td("num c-uncertain", null, r[29]));
	tr.appendChild(td("num", r[15], r[16]));
	tr.appendChild(td("num", r[17], r[18]));
	tr.appendChild(td("num c-complete", r[23] < 0 ? "" : r[23] - r[24], r[23] < 0 ? "\u2013" : r[23] + " / " + r[24]));
	var v = td("c-verify", r[22]);
	if (r[22]) {
		v.title = "verified " + r[25] + " UTC";
		v.appendChild(el("span", "pill " + (r[22] === "PASS" ? "s-done" : r[22] === "FAIL" ? "s-failed" : "s-partial"), r[22]));
	} else
		v.appendChild(el("span", "muted", "not verified"));
	tr.appendChild(v);
	tr.appendChild(td("num c-synced", r[26], r[27]));
	var e = el("td", "err");
	if (r[19] || r[21]) {
		e.title = r[19] + " " + r[20] + ": " + r[21];
		var sp = el("span");
		sp.appendChild(el("b", null, r[19]));
		sp.appendChild(document.createTextNode(" " + r[21]));
		e.appendChild(sp);
	}
	tr.appendChild(e);
	return tr;
}
var pager = document.getElementById("pager"), info = document.getElementById("pageinfo"),
    prev = document.getElementById("prev"), next = document.getElementById("next"),
    ps = document.getElementById("pagesize"), shown = document.getElementById("shown"),
    nojs = document.getElementById("nojs");
function fmt(n)
{
	return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
function render()
{
	var n = view.length, per = size > 0 ? size : n || 1, pages = Math.max(1, Math.ceil(n / per));
	if (page >= pages)
		page = pages - 1;
	if (page < 0)
		page = 0;
	var from = page * per, to = Math.min(n, from + per), f = document.createDocumentFragment();
	for (var k = from; k < to; k++)
		f.appendChild(row(R[view[k]]));
	while (body.firstChild)
		body.removeChild(body.firstChild);
	body.appendChild(f);
	if (shown)
		shown.textContent = fmt(n);
	if (info)
		info.textContent =
		    n ? fmt(from + 1) + "\u2013" + fmt(to) + " of " + fmt(n) + (q ? " matching" : "")
		      : "no account matches";
	if (prev)
		prev.disabled = page === 0;
	if (next)
		next.disabled = to >= n;
}
function filterView()
{
	view = [];
	for (var k = 0; k < R.length; k++)
		if (q === "" || low[k].indexOf(q) >= 0)
			view.push(k);
}
function order()
{
	var k = sortKey !== null ? sortKey : "rank", d = sortKey !== null ? sortDir : 1;
	view.sort(function(a, b) {
		var x = key(R[a], k), y = key(R[b], k);
		return (x < y ? -1 : x > y ? 1 : 0) * d || R[a][0] - R[b][0];
	});
}
function mark(i, dir)
{
	sortKey = heads[i].getAttribute("data-key");
	sortDir = dir;
	for (var k = 0; k < heads.length; k++)
		heads[k].removeAttribute("aria-sort");
	heads[i].setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
}
function sortBy(i, dir)
{
	mark(i, dir);
	page = 0;
	order();
	render();
}
Array.prototype.forEach.call(heads,function(th,i){th.tabIndex=0;
function go(){var s=th.getAttribute("aria-sort");sortBy(i,s?(s==="ascending"?-1:1):(th.classList.contains("num")?-1:1));}
th.addEventListener("click",go);
th.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();go();}});});
var f = document.getElementById("filter");
if (f)
	f.addEventListener("input", function() {
		q = f.value.toLowerCase();
		page = 0;
		filterView();
		order();
		render();
	});
if (prev)
	prev.addEventListener("click", function() {
		page--;
		render();
	});
if (next)
	next.addEventListener("click", function() {
		page++;
		render();
	});
if (ps)
	ps.addEventListener("change", function() {
		size = Number(ps.value);
		page = 0;
		render();
	});
if (pager)
	pager.hidden = false;
if (nojs)
	nojs.hidden = true;
/* A view can be linked: #sort=-copied&q=failed&page=3&size=500 (any of them, in any order). */
var want = {};
location.hash.replace(/^#/, "").split("&").forEach(function(p) {
	var e = p.indexOf("=");
	if (e > 0)
		try {
			want[p.slice(0, e)] = decodeURIComponent(p.slice(e + 1));
		} catch (x) {
		}
});
if (/^[0-9]+$/.test(want.size || "")) {
	size = Number(want.size);
	if (ps)
		ps.value = String(size);
}
if (want.q) {
	q = want.q.toLowerCase();
	if (f)
		f.value = want.q;
}
filterView();
var m = /^(-?)([a-z_]+)$/.exec(want.sort || "");
if (m)
	for (var h = 0; h < heads.length; h++)
		if (heads[h].getAttribute("data-key") === m[2])
			mark(h, m[1] ? -1 : 1);
order();
if (/^[0-9]+$/.test(want.page || ""))
	page = Number(want.page) - 1;
render();
})();
