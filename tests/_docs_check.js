// Measures a laid-out documentation page for tests/test_docs_style.py; leaves its
// findings as JSON in a pre element (id netproto-check) at the end of the body.
(function () {
  function rgb(text) { return (text.match(/[\d.]+/g) || []).slice(0, 4).map(Number); }
  function opaque(element) {
    for (let e = element; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  }
  function luminance(c) {
    const [r, g, b] = c.map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function contrast(a, b) {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  }
  const found = {overflowing: [], coloured: [], faint: [], split_names: [], split_rows: [], paths: []};
  for (const pre of document.querySelectorAll("div.highlight pre")) {
    if (pre.scrollWidth > pre.clientWidth + 1) found.overflowing.push(pre.textContent.slice(0, 60));
    const ratio = contrast(rgb(getComputedStyle(pre).color), opaque(pre));
    if (ratio < 4.5) found.faint.push([pre.textContent.slice(0, 40), ratio]);
  }
  for (const span of document.querySelectorAll("div.highlight-console pre span:not(.gp)")) {
    const pre = span.closest("pre");
    if (span.textContent.trim() && getComputedStyle(span).color !== getComputedStyle(pre).color)
      found.coloured.push(span.textContent.slice(0, 30));
    const ratio = contrast(rgb(getComputedStyle(span).color), opaque(span));
    if (span.textContent.trim() && ratio < 4.5) found.faint.push([span.textContent.slice(0, 30), ratio]);
  }
  for (const code of document.querySelectorAll("table code.literal")) {
    if (code.getClientRects().length > 1) found.split_names.push(code.textContent);
  }
  for (const row of document.querySelectorAll("table tr")) {
    const first = row.cells[0] && row.cells[0].textContent.trim();
    if (first && first.endsWith(",")) found.split_rows.push(first);
  }
  if (/\/(work|root|home)\//.test(document.body.innerText)) found.paths.push(location.pathname);
  const out = document.createElement("pre");
  out.id = "netproto-check";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
})();
