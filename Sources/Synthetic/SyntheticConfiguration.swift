/// The knobs of `braid generate`. Everything not listed here is a fixed constant of
/// the generative process documented on ``SyntheticGenerator``.
public struct SyntheticConfiguration: Sendable, Equatable {
    /// Total rows over train, valid and test. Default 240 000 (a unified training run
    /// of a few minutes on 2 cores; 36 000 test rows, so that a surface's test AUC moves
    /// by well under 0.01 between seeds).
    public var rows: Int
    /// The seed of every random draw; equal seeds and settings give identical bytes.
    public var seed: UInt64
    /// Number of users; nil means `max(50, rows / 20)`, about 20 rows per user.
    public var users: Int?
    /// Number of ads; nil means `max(100, rows / 40)`. Advertisers are `max(10, ads / 10)`.
    public var ads: Int?
    /// Fraction of rows written to valid.csv (default 0.15: early stopping and the
    /// per-surface Platt fits of the smallest surface need a few thousand rows).
    public var validFraction: Double
    /// Fraction of rows written to test.csv (default 0.15); train.csv gets the rest.
    public var testFraction: Double
    /// Probability that a label cell is left empty (label missing); its p_<task> is
    /// still written. Default 0.01.
    public var missingLabelRate: Double

    /// A configuration with the documented defaults for anything not given.
    public init(rows: Int = 240_000, seed: UInt64 = 0, users: Int? = nil, ads: Int? = nil,
                validFraction: Double = 0.15, testFraction: Double = 0.15, missingLabelRate: Double = 0.01) {
        self.rows = rows
        self.seed = seed
        self.users = users
        self.ads = ads
        self.validFraction = validFraction
        self.testFraction = testFraction
        self.missingLabelRate = missingLabelRate
    }

    /// The number of users actually generated.
    public var resolvedUsers: Int { users ?? max(50, rows / 20) }
    /// The number of ads actually generated.
    public var resolvedAds: Int { ads ?? max(100, rows / 40) }
    /// The number of advertisers actually generated.
    public var resolvedAdvertisers: Int { max(10, resolvedAds / 10) }

    /// Row counts of (train, valid, test): valid and test are rounded down, train gets the rest.
    public var splitRows: (train: Int, valid: Int, test: Int) {
        let valid = Int(Double(rows) * validFraction)
        let test = Int(Double(rows) * testFraction)
        return (rows - valid - test, valid, test)
    }

    /// Checks every value; the error says what was expected and found.
    public func validate() throws {
        guard rows >= 1 else {
            throw SyntheticError("--rows is \(rows); expected a positive number of rows, e.g. --rows 240000")
        }
        guard rows <= 1_000_000_000 else {
            throw SyntheticError("--rows is \(rows); expected at most 1000000000 rows, split the data set into several runs")
        }
        if let users, users < 1 || users > 100_000_000 {
            throw SyntheticError("--users is \(users); expected between 1 and 100000000 users, or omit it for rows / 20")
        }
        if let ads, ads < 1 || ads > 100_000_000 {
            throw SyntheticError("--ads is \(ads); expected between 1 and 100000000 ads, or omit it for rows / 40")
        }
        for (name, value) in [("valid fraction", validFraction), ("test fraction", testFraction),
                              ("missing label rate", missingLabelRate)] {
            guard value >= 0, value < 1 else {
                throw SyntheticError("the \(name) is \(value); expected a number in [0, 1)")
            }
        }
        guard validFraction + testFraction < 1 else {
            throw SyntheticError(
                "valid fraction \(validFraction) + test fraction \(testFraction) = \(validFraction + testFraction); "
                    + "expected less than 1 so that train.csv gets rows")
        }
    }
}
