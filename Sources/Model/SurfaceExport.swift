import JSON
import NN
import Schema

/// A surface that cannot be exported from a model (SPEC 3): not in its schema, or not
/// served by it (an export of another surface lacks that surface's tensors).
public struct SurfaceExportError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message }
}

/// SPEC 3 surface export, as the reference's `export_surface`: the config of `model` with
/// `surfaces_included = [surface]` and `calibration` filtered to `surface`, and a new
/// `ParameterStore` laid out by `parameterLayout(exportConfig)` holding only what
/// `surface` uses: its gate and tower tree, the shared modules, the whole tables of the
/// features that exist on `surface` (and the sequence item table), row 0 of every other
/// table ([buckets, D] -> [1, D]); `surface.weight` stays [S, D].
///
/// Every export tensor is a leading-rows slice of the unified tensor of the same name
/// (row-major, so the first `shape.reduce(1, *)` floats), which is why the export scores
/// `surface`'s rows exactly as the unified model does: a feature absent on `surface` is
/// always read as bucket 0 there.
///
/// Throws `SurfaceExportError` when `surface` is not one the model serves.
public func exportSurface(_ model: BraidModel, surface: String) throws -> (ModelConfig, ParameterStore) {
    let config = model.config
    guard config.surfacesIncluded.contains(surface) else {
        let what = config.schema.surfaces.contains(surface) ? "a surface this model does not serve" : "unknown surface"
        throw SurfaceExportError(message: "export: \(what) \(pythonRepr(surface)); expected one of the surfaces this model serves "
            + "\(pythonRepr(config.surfacesIncluded)) (an export holds only its own surface's tensors: export from the unified model)")
    }
    var exported = config
    exported.surfacesIncluded = [surface]
    exported.calibration = config.calibration.filter { $0.key == surface }
    let layout = parameterLayout(exported)
    let store = ParameterStore(layout)
    for (name, shape) in layout {
        guard let source = model.parameters.tensor(named: name), let target = store.tensor(named: name) else {
            preconditionFailure("export: parameter \(name) of the export layout is missing from the model (layouts disagree)")
        }
        let count = shape.reduce(1, *)
        precondition(source.shape.count == shape.count && source.shape.dropFirst() == shape.dropFirst() && source.shape[0] >= shape[0],
                     "export: \(name) is \(source.shape) in the model, \(shape) in the export; expected a leading-rows slice")
        target.data.update(from: source.data, count: count)
    }
    return (exported, store)
}

/// The number of float parameters in a layout (every tensor's element count, tables included).
public func parameterCount(_ layout: [(name: String, shape: [Int])]) -> Int {
    layout.reduce(0) { $0 + $1.shape.reduce(1, *) }
}
