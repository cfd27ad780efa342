(function(){"use strict";
var t=document.getElementById("accounts");if(!t)return;
var body=t.tBodies[0],heads=t.tHead.rows[0].cells;
function val(row,i,num){var c=row.cells[i],v=c.getAttribute("data-v");if(v===null)v=c.textContent;return num?Number(v):v.toLowerCase();}
function sortBy(i,dir){var num=heads[i].classList.contains("num");var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=val(a,i,num),y=val(b,i,num);return (x<y?-1:x>y?1:0)*dir||Number(a.getAttribute("data-job"))-Number(b.getAttribute("data-job"));});
rows.forEach(function(r){body.appendChild(r);});
for(var k=0;k<heads.length;k++)heads[k].removeAttribute("aria-sort");
heads[i].setAttribute("aria-sort",dir>0?"ascending":"descending");}
Array.prototype.forEach.call(heads,function(th,i){th.tabIndex=0;
function go(){var s=th.getAttribute("aria-sort");sortBy(i,s?(s==="ascending"?-1:1):(th.classList.contains("num")?-1:1));}
th.addEventListener("click",go);
th.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();go();}});});
var f=document.getElementById("filter"),shown=document.getElementById("shown");
if(f)f.addEventListener("input",function(){var q=f.value.toLowerCase(),n=0;Array.prototype.forEach.call(body.rows,function(r){r.hidden=q!==""&&r.textContent.toLowerCase().indexOf(q)<0;if(!r.hidden)n++;});if(shown)shown.textContent=String(n);});
var m=/^#sort=(-?)([a-z_]+)$/.exec(location.hash);
if(m)for(var k=0;k<heads.length;k++)if(heads[k].getAttribute("data-key")===m[2])sortBy(k,m[1]?-1:1);
})();
