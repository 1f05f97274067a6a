import ArgumentParser
import Schema
import Training

/// `--lr-schedule` and `--negative-sampling`, shared by `braid train` and `braid demo`, whose
/// defaults differ: the values hold only what was given (nil, empty), and each command states
/// its defaults in its description and passes them to `apply(to:defaultSchedule:defaultSampling:)`.
struct ScheduleAndSamplingOptions: ParsableArguments {
    @Option(name: .customLong("lr-schedule"), help: ArgumentHelp(
        "Adam learning rate over the run: constant (the reference's) or cosine (decays to 0 by the last step). "
            + "Default: see the description above.",
        valueName: "constant|cosine")) var lrSchedule: LearningRateSchedule?

    @Option(name: .customLong("negative-sampling"), parsing: .singleValue, help: ArgumentHelp(
        "Keep only this share of SURFACE's training rows without a positive label (repeatable; surface=1 keeps "
            + "every row); per-surface calibration removes the shift it gives the logits. Default: see the description above.",
        valueName: "surface=rate")) var negativeSampling: [NegativeSampling] = []

    func validate() throws {
        for sampling in negativeSampling {
            do {
                try TrainRun.checkNegativeKeepRate(sampling.rate, surface: sampling.surface)
            } catch let error as ConfigError {
                throw ValidationError("--negative-sampling: \(error.message)")
            }
        }
    }

    /// Sets `options`' learning-rate schedule and negative keep rates: the values given, else the defaults.
    func apply(to options: inout TrainingOptions, defaultSchedule: LearningRateSchedule, defaultSampling: [NegativeSampling]) {
        options.learningRateSchedule = lrSchedule ?? defaultSchedule
        options.negativeKeepRate = NegativeSampling.rates(negativeSampling.isEmpty ? defaultSampling : negativeSampling)
    }
}

extension LearningRateSchedule: ExpressibleByArgument {}
