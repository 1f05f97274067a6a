import Foundation

/// A self-contained HTML report (inline SVG, no scripts, no network): tables,
/// line charts (loss curves), grouped bars (AUC per surface) and reliability
/// diagrams. Built section by section; `html` is the finished page.
public struct HTMLReport {
    private var body = ""
    public let title: String
    public init(title: String) { self.title = title }

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    public mutating func heading(_ text: String) { body += "<h2>\(Self.escape(text))</h2>\n" }
    public mutating func paragraph(_ text: String) { body += "<p>\(Self.escape(text))</p>\n" }

    /// A table; the first row is the header.
    public mutating func table(_ rows: [[String]]) {
        guard let head = rows.first else { return }
        body += "<table><tr>" + head.map { "<th>\(Self.escape($0))</th>" }.joined() + "</tr>\n"
        for r in rows.dropFirst() { body += "<tr>" + r.map { "<td>\(Self.escape($0))</td>" }.joined() + "</tr>\n" }
        body += "</table>\n"
    }

    /// Line chart of named series of (x, y) points.
    public mutating func lineChart(title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(Double, Double)])]) {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return }
        let xs = all.map(\.0), ys = all.map(\.1).filter(\.isFinite)
        let (x0, x1) = (xs.min()!, max(xs.max()!, xs.min()! + 1))
        let (y0, y1) = ys.isEmpty ? (0.0, 1.0) : (ys.min()! - 0.05 * (ys.max()! - ys.min()! + 1e-9), ys.max()! + 0.05 * (ys.max()! - ys.min()! + 1e-9))
        var svg = frame(title: title, xLabel: xLabel, yLabel: yLabel, x: (x0, x1), y: (y0, y1))
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let pts = s.points.filter { $0.1.isFinite }.map { "\(px($0.0, x0, x1)),\(py($0.1, y0, y1))" }.joined(separator: " ")
            svg += "<polyline fill='none' stroke='\(color)' stroke-width='2' points='\(pts)'/>"
            for p in s.points where p.1.isFinite { svg += "<circle cx='\(px(p.0, x0, x1))' cy='\(py(p.1, y0, y1))' r='3' fill='\(color)'/>" }
            svg += "<text x='\(W - 150)' y='\(30 + 16 * i)' fill='\(color)' font-size='12'>\(Self.escape(s.name))</text>"
        }
        body += svg + "</svg>\n"
    }

    /// Grouped bars: one group per category, one bar per series.
    public mutating func barChart(title: String, yLabel: String, categories: [String], series: [(name: String, values: [Double?])], yRange: (Double, Double)) {
        var svg = frame(title: title, xLabel: "", yLabel: yLabel, x: (0, Double(categories.count)), y: yRange, xTicks: false)
        let groupWidth = Double(W - 2 * M) / Double(max(categories.count, 1))
        let barWidth = groupWidth * 0.8 / Double(max(series.count, 1))
        for (c, name) in categories.enumerated() {
            let gx = Double(M) + Double(c) * groupWidth
            svg += "<text x='\(gx + groupWidth / 2)' y='\(H - M + 16)' text-anchor='middle' font-size='12'>\(Self.escape(name))</text>"
            for (i, s) in series.enumerated() {
                guard let v = s.values[c], v.isFinite else { continue }
                let y = py(v, yRange.0, yRange.1), base = py(yRange.0, yRange.0, yRange.1)
                svg += "<rect x='\(gx + groupWidth * 0.1 + Double(i) * barWidth)' y='\(y)' width='\(barWidth - 2)' height='\(max(0, base - y))' fill='\(Self.palette[i % Self.palette.count])'><title>\(Self.escape(s.name)): \(String(format: "%.4f", v))</title></rect>"
            }
        }
        for (i, s) in series.enumerated() {
            svg += "<text x='\(W - 150)' y='\(30 + 16 * i)' fill='\(Self.palette[i % Self.palette.count])' font-size='12'>\(Self.escape(s.name))</text>"
        }
        body += svg + "</svg>\n"
    }

    /// Reliability diagram: mean predicted probability vs observed rate per bin, with the diagonal.
    public mutating func reliabilityDiagram(title: String, series: [(name: String, points: [(Double, Double)])]) {
        let hi = max(0.05, (series.flatMap { $0.points.flatMap { [$0.0, $0.1] } }.max() ?? 1) * 1.1)
        var svg = frame(title: title, xLabel: "mean predicted probability", yLabel: "observed rate", x: (0, hi), y: (0, hi))
        svg += "<line x1='\(px(0, 0, hi))' y1='\(py(0, 0, hi))' x2='\(px(hi, 0, hi))' y2='\(py(hi, 0, hi))' stroke='#999' stroke-dasharray='4'/>"
        body += svg + "</svg>\n"
        body.removeLast("</svg>\n".count)
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let pts = s.points.map { "\(px($0.0, 0, hi)),\(py($0.1, 0, hi))" }.joined(separator: " ")
            body += "<polyline fill='none' stroke='\(color)' stroke-width='2' points='\(pts)'/>"
            for p in s.points { body += "<circle cx='\(px(p.0, 0, hi))' cy='\(py(p.1, 0, hi))' r='3' fill='\(color)'/>" }
            body += "<text x='\(W - 170)' y='\(H - M - 20 - 16 * i)' fill='\(color)' font-size='12'>\(Self.escape(s.name))</text>"
        }
        body += "</svg>\n"
    }

    private let W = 560, H = 340, M = 50
    private func px(_ x: Double, _ x0: Double, _ x1: Double) -> Double { Double(M) + (x - x0) / (x1 - x0) * Double(W - 2 * M) }
    private func py(_ y: Double, _ y0: Double, _ y1: Double) -> Double { Double(H - M) - (y - y0) / (y1 - y0) * Double(H - 2 * M) }

    private func frame(title: String, xLabel: String, yLabel: String, x: (Double, Double), y: (Double, Double), xTicks: Bool = true) -> String {
        var s = "<svg xmlns='http://www.w3.org/2000/svg' width='\(W)' height='\(H)' style='background:#fff;border:1px solid #ddd;margin:6px'>"
        s += "<text x='\(W / 2)' y='18' text-anchor='middle' font-size='14' font-weight='bold'>\(Self.escape(title))</text>"
        s += "<line x1='\(M)' y1='\(H - M)' x2='\(W - M)' y2='\(H - M)' stroke='#333'/><line x1='\(M)' y1='\(M)' x2='\(M)' y2='\(H - M)' stroke='#333'/>"
        for i in 0...4 {
            let v = y.0 + (y.1 - y.0) * Double(i) / 4
            s += "<text x='\(M - 4)' y='\(py(v, y.0, y.1) + 4)' text-anchor='end' font-size='10'>\(String(format: "%.3g", v))</text>"
            if xTicks {
                let u = x.0 + (x.1 - x.0) * Double(i) / 4
                s += "<text x='\(px(u, x.0, x.1))' y='\(H - M + 14)' text-anchor='middle' font-size='10'>\(String(format: "%.3g", u))</text>"
            }
        }
        s += "<text x='\(W / 2)' y='\(H - 8)' text-anchor='middle' font-size='11'>\(Self.escape(xLabel))</text>"
        s += "<text x='12' y='\(H / 2)' font-size='11' transform='rotate(-90 12 \(H / 2))' text-anchor='middle'>\(Self.escape(yLabel))</text>"
        return s
    }

    public var html: String {
        """
        <!doctype html><html><head><meta charset='utf-8'><title>\(Self.escape(title))</title>
        <style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse;margin:8px 0}
        td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
        td:first-child,th:first-child{text-align:left}</style></head><body><h1>\(Self.escape(title))</h1>
        \(body)</body></html>
        """
    }
}

/// Reliability points: `bins` equal-count bins of p (sorted), (mean p, mean y) each.
public func reliabilityPoints(probabilities p: [Double], labels y: [Double], bins: Int = 10) -> [(Double, Double)] {
    let order = p.indices.sorted { p[$0] < p[$1] }
    guard !order.isEmpty else { return [] }
    var out: [(Double, Double)] = []
    let n = order.count
    for b in 0..<bins {
        let lo = b * n / bins, hi = (b + 1) * n / bins
        if hi <= lo { continue }
        var sp = 0.0, sy = 0.0
        for i in lo..<hi { sp += p[order[i]]; sy += y[order[i]] }
        out.append((sp / Double(hi - lo), sy / Double(hi - lo)))
    }
    return out
}
