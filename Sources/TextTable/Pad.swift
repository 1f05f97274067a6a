// The plain-text tables Braid prints (eval, train summaries, generate's summary, bench
// tables) line their cells up with one helper.

/// `text` padded with spaces to `width` characters: right-aligned (numbers), or
/// left-aligned with `left` (names). Text at least `width` long is returned unchanged.
public func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + fill : fill + text
}
