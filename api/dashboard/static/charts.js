// Small line charts over uPlot (vendored, MIT): time on x, one or more series on y.
import uPlot from "./vendor/uplot/uPlot.esm.js";

export class LineChart {
  constructor(target, series, { height = 150 } = {}) {
    this.target = target;
    const width = Math.max(target.clientWidth || 320, 240);
    this.plot = new uPlot(
      {
        width,
        height,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true, range: (u, min, max) => [Math.min(min ?? 0, (max ?? 0) - 300), max ?? 0] }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1] } },
        axes: [{ stroke: "#8892a0", grid: { stroke: "#2a3140" } }, { stroke: "#8892a0", grid: { stroke: "#2a3140" }, size: 48 }],
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, spanGaps: true }))],
      },
      [[], ...series.map(() => [])],
      target,
    );
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(target.clientWidth, 240), height })).observe(target);
  }

  set(t, columns) {
    this.plot.setData([t, ...columns]);
  }
}
