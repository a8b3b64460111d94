// Shared by the browser tests: the page's figure against the native tool's, cell by cell (from the
// page's JSON export, or from its tooltip at a cell the test points at).
import assert from "node:assert/strict";
import fs from "node:fs";

/// The page's figure as its "Export JSON" button downloads it.
export async function exportJson(p) {
  const [download] = await Promise.all([p.waitForEvent("download"), p.click("#export-json")]);
  return JSON.parse(fs.readFileSync(await download.path(), "utf8"));
}

/// Every cell of `expected` (a native report: `n_rows` × `ids.length`) against `got` (an exported or
/// native report of the same question): each cell's entropy error, in row order; and where the
/// native top-1 leads the second by more than `top1Gap`, how many such cells there are and where
/// `got` has another top-1 (none when `top1Gap` is null).
export function lensDifferences(got, expected, { top1Gap = 1e-3 } = {}) {
  const errors = [];
  const mismatches = [];
  let compared = 0;
  for (let r = 0; r < expected.n_rows; r++) {
    for (let p = 0; p < expected.ids.length; p++) {
      errors.push(Math.abs(got.entropy[r]?.[p] - expected.entropy[r][p]));
      const [a, b] = expected.top_probs[r][p];
      if (top1Gap !== null && a - b > top1Gap) {
        compared++;
        if (got.top_ids[r]?.[p]?.[0] !== expected.top_ids[r][p][0]) mismatches.push([r, p]);
      }
    }
  }
  return { errors, compared, agree: compared - mismatches.length, mismatches };
}

/// "The page's figure equals the native tool's", cell by cell: at every cell the entropy is within
/// `entropy` nats, and where the native top-1 leads the second by more than `top1Gap` (null: top-1
/// not compared) the top-1 token is the same (its id, and with `tokens` its text too).
export function assertSameLens(got, expected, { entropy = 0.01, top1Gap = 1e-3, tokens = false, label = "" } = {}) {
  const at = (r, p) => `${label ? `${label}: ` : ""}(${r}, ${p})`;
  for (let r = 0; r < expected.n_rows; r++) {
    for (let p = 0; p < expected.ids.length; p++) {
      const [g, e] = [got.entropy[r]?.[p], expected.entropy[r][p]];
      assert.ok(Math.abs(g - e) < entropy, `entropy ${at(r, p)}: ${g} vs ${e}`);
      if (top1Gap === null) continue;
      const [a, b] = expected.top_probs[r][p];
      if (a - b > top1Gap) {
        assert.equal(got.top_ids[r]?.[p]?.[0], expected.top_ids[r][p][0], `top-1 ${at(r, p)}`);
        if (tokens) assert.equal(got.top_tokens[r]?.[p]?.[0], expected.top_tokens[r][p][0], `top-1 token ${at(r, p)}`);
      }
    }
  }
}

/// Hovers the magnified view's cell (row, pos) where the page draws it (the grid's geometry is on
/// `#magnified`, from the layout that draws and hit-tests it) and returns what the tooltip shows.
export async function hoverCell(p, row, pos) {
  const [start, end] = (await p.getAttribute("#figure", "data-range")).split(",").map(Number);
  assert.ok(pos >= start && pos < end, `position ${pos} inside the magnified range ${start}..${end}`);
  const canvas = p.locator("#magnified");
  await canvas.scrollIntoViewIfNeeded();
  const grid = await canvas.evaluate((c) => {
    const numbers = Object.fromEntries(Object.entries(c.dataset).map(([k, v]) => [k, Number(v)]));
    return { ...numbers, nRows: Number(document.querySelector("#figure").dataset.nRows) };
  });
  for (const key of ["zoom", "gridLeft", "gridTop", "cellW", "cellH", "firstPos", "nRows"]) {
    assert.ok(Number.isFinite(grid[key]), `the page gives the grid's ${key}: ${grid[key]} (dist/ built from this source?)`);
  }
  const box = await canvas.boundingBox();
  // The layout is in figure pixels; the page draws them `zoom` CSS pixels wide.
  const x = grid.gridLeft + (pos - grid.firstPos + 0.5) * grid.cellW;
  const y = grid.gridTop + (grid.nRows - 1 - row + 0.5) * grid.cellH;
  await p.mouse.move(box.x + x * grid.zoom, box.y + y * grid.zoom);
  const tip = p.locator("#tooltip");
  // The tooltip is drawn anew for the cell under the pointer: wait until it names this one (if it
  // names another, the caller's checks say so).
  await p.waitForSelector(`#tooltip[data-row="${row}"][data-pos="${pos}"]`, { timeout: 5000 })
    .catch(() => tip.waitFor({ timeout: 1000 }));
  return {
    row: Number(await tip.getAttribute("data-row")),
    pos: Number(await tip.getAttribute("data-pos")),
    entropy: Number(await tip.getAttribute("data-entropy")),
    top1Id: Number(await tip.getAttribute("data-top1-id")),
    text: await tip.textContent(),
  };
}

/// The tooltip at each (row, pos) of `cells` names that cell and shows `expected`'s top-1 and its
/// entropy within `entropy` nats.
export async function assertSameTooltips(p, expected, cells, { entropy = 0.01 } = {}) {
  for (const [row, pos] of cells) {
    const tip = await hoverCell(p, row, pos);
    assert.deepEqual([tip.row, tip.pos], [row, pos]);
    assert.equal(tip.top1Id, expected.top_ids[row][pos][0], `top-1 at (${row}, ${pos})`);
    assert.ok(Math.abs(tip.entropy - expected.entropy[row][pos]) < entropy,
      `entropy at (${row}, ${pos}): ${tip.entropy} vs ${expected.entropy[row][pos]}`);
  }
}
