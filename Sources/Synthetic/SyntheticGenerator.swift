import Foundation
import Random

/// `braid generate`: a synthetic multi-surface ad-engagement data set with known
/// ground truth, deterministic for a seed, built to show why one unified model beats
/// one model per surface.
///
/// ## The world (drawn once from stream 0 of the seed)
/// - K = 8 topics; each topic has 4 fine categories (32 `pc<n>` pin categories) and
///   a 24-word query vocabulary (`t<topic>w<index>`).
/// - 20 countries c with a topic bias beta_c ~ N(0, 0.6^2 I_K). Countries are skewed
///   (index floor(20 u^2), u ~ U[0,1)) and written as two-letter codes.
/// - Users u (default rows / 20), drawn with the skew floor(U u^2) at request time.
///   A favourite topic f_u ~ softmax(beta_country(u)); static interest theta_u =
///   beta_country(u) + 2.0 e_{f_u} + N(0, 0.3^2 I_K), activity b_u ~ N(0, 0.1^2), save
///   propensity s_u ~ N(0, 0.1^2). Interests are shared by every surface: this is what
///   lets small surfaces borrow the big one's data.
///   Long-term history: with probability 0.05 none (a cold user), else H_u ~ U{4..96}
///   ads whose topics are drawn from softmax(theta_u), actions from the engagement mix
///   below with 5% `hide` (7).
/// - Advertisers v (ads / 10) with a topic and quality q_v ~ N(0, 0.3^2). Ads a
///   (default rows / 40): advertiser uniform, topic t_a = the advertiser's with
///   probability 0.8 else uniform, fine category uniform within the topic, quality
///   q_a ~ N(0, 0.5^2). Historical CTR `ad_hist_ctr` = sigmoid(-3.2 + q_a + q_v +
///   N(0, 0.05^2)), missing for 2% of ads (new ads). Within a topic, ads are drawn
///   with the skew floor(n u^2) (popular heads, long tails). Each ad's fine category
///   is written as `ad_category` (`pc<n>`).
/// - The action sequence holds the fine category (`pc<n>`) of each pin the user acted
///   on, in the `category` table shared with `ad_category` (the schema's item table):
///   pin ids would need far more rows than a demo has for their embeddings to learn
///   what a category embedding learns at once (see docs/DECISIONS.md).
///
/// ## A request (stream 1), then its candidates
/// - Surface s with traffic shares home_feed 0.50, search 0.30, related_pins 0.20.
/// - Recent topic r: with probability 0.5 drawn from softmax(theta_u), else uniform.
///   It is a per-request drift that no static user feature reveals.
/// - Sequence (most recent first; empty for cold users): R ~ U{2..8} recent items,
///   each a `hide` (action 7) of a uniformly random topic with probability 0.1, else
///   an engagement (actions 1..6 with weights .35 .12 .20 .18 .08 .07) of topic r with
///   probability 0.8 or of a static topic; then the user's H_u history items. Lengths
///   reach 104, so the reader's max_length 64 truncation is exercised.
/// - Recent similarity, for each topic k, over the first min(8, L) items i:
///   sim_k = sum_i 0.8^i w_i [topic_i = k] / sum_{i<8} 0.8^i, w_i = -1 for hide else 1.
/// - Context topic c: r with probability 0.5, a static topic 0.3, uniform 0.2.
///   search: `query_tokens` = 1-3 words, each of topic c (else, with probability
///   0.1, of a random topic). related_pins: `context_pin_cat` = a fine category of c.
/// - n ~ U{1..8} candidates at positions 1..n. Candidate topic: home_feed static
///   0.3 / recent 0.2 / uniform 0.5; search c 0.6 else uniform; related_pins c 0.5
///   else uniform; then an ad of that topic.
///
/// ## Ground truth
/// ```
/// z_click = alpha_s + b_u + q_a + q_v + lambda_s theta_u[t_a] + 2.0 sim_{t_a}
///           - 0.3 ln(position) + context_s
///   alpha = (-3.25, -2.5, -4.1), lambda = (0.6, 0.4, 0.6)   (home_feed, search, related_pins)
///   context_search  = 1.2 [t_a = c],      query_ad_sim = 0.7 [t_a = c] + N(0, 0.2^2)
///   context_related = 0.6 [t_a = c] + 0.3 [fine_a = context_pin_cat]
/// p_click = sigmoid(z_click)
/// z_save  = gamma_s + 0.4 theta_u[t_a] + s_u + 0.8 sim_{t_a},  gamma = (-2.0, -, -1.6)
/// p_save  = p_click * sigmoid(z_save)      (home_feed and related_pins only)
/// ```
/// p values are written rounded to 6 decimals and clamped to [1e-6, 1 - 1e-6]; the
/// labels are drawn from the written values: click ~ Bernoulli(p_click), and
/// save ~ Bernoulli(p_save / p_click) given click = 1, else 0 (a save implies a
/// click). Each label cell is empty with probability `missingLabelRate`. Search rows
/// have empty `save` and `p_save`; cells of features a surface lacks are empty.
///
/// The generator's README.txt reports, per surface, click rates and the oracle's AUC
/// with and without the sequence term (about 0.81-0.85 and 0.78-0.81 by default).
///
/// Splits: rows are i.i.d. given the world; the first 70% go to train.csv, then 15%
/// valid.csv, 15% test.csv (users and ads are shared across the splits).
public struct SyntheticGenerator {
    /// The validated configuration.
    public let configuration: SyntheticConfiguration

    /// The surfaces, in schema order.
    public static let surfaces = ["home_feed", "search", "related_pins"]
    /// The tasks of each surface, in schema order.
    public static let tasks: [String: [String]] = [
        "home_feed": ["click", "save"], "search": ["click"], "related_pins": ["click", "save"],
    ]
    /// The CSV header, in file order.
    public static let columns = [
        "request_id", "surface", "click", "save", "p_click", "p_save", "user_id", "user_country",
        "ad_id", "advertiser_id", "ad_category", "position", "ad_hist_ctr", "query_tokens", "query_ad_sim",
        "context_pin_cat", "seq_items", "seq_actions",
    ]
    /// The file names written into the output directory.
    public static let files = ["train.csv", "valid.csv", "test.csv", "model.json", "README.txt"]

    /// Validates `configuration`; throws a message naming the bad value.
    public init(configuration: SyntheticConfiguration = SyntheticConfiguration()) throws {
        try configuration.validate()
        self.configuration = configuration
    }

    /// Writes train.csv, valid.csv, test.csv, model.json and README.txt into
    /// `directory` (created if missing) and returns the statistics.
    /// `progress(rowsWritten, totalRows)` is called every 100 000 rows and at the end.
    @discardableResult
    public func write(to directory: String, progress: ((Int, Int) -> Void)? = nil) throws -> SyntheticReport {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SyntheticError("cannot create output directory \(directory) (\(error.localizedDescription)); "
                + "expected a path where a directory can be created, check --out")
        }
        let start = Date()
        let world = World(configuration: configuration)
        let base = URL(fileURLWithPath: directory)
        let writers = try ["train.csv", "valid.csv", "test.csv"].map {
            try BufferedFileWriter(path: base.appendingPathComponent($0).path)
        }
        var collector = ReportCollector()
        try generateRows(world: world, writers: writers, collector: &collector, progress: progress)
        for writer in writers { try writer.close() }
        let seconds = Date().timeIntervalSince(start)
        let report = collector.finish(configuration: configuration, seconds: seconds,
                                      bytes: writers.map(\.bytesWritten))
        try writeText(modelConfigurationJSON(), to: base.appendingPathComponent("model.json").path)
        try writeText(readme(report: report), to: base.appendingPathComponent("README.txt").path)
        return report
    }

    private func writeText(_ text: String, to path: String) throws {
        let writer = try BufferedFileWriter(path: path)
        writer.buffer.append(text)
        try writer.close()
    }

    // MARK: - Rows

    /// Draws requests until `configuration.rows` candidates are written, each to the split
    /// its index falls in (train, valid, test in that order), and collects the report.
    private func generateRows(world: World, writers: [BufferedFileWriter], collector: inout ReportCollector,
                              progress: ((Int, Int) -> Void)?) throws {
        let total = configuration.rows
        let split = configuration.splitRows
        let splitEnds = [split.train, split.train + split.valid, total]
        let header = Array((Self.columns.joined(separator: ",") + "\n").utf8)
        for writer in writers { writer.buffer.append(header) }

        var random = Xoshiro256StarStar(seed: configuration.seed, stream: 1)
        let surfaceNames = Self.surfaces.map { Array($0.utf8) }
        var draw = RequestDraw()
        var row = 0
        var request = 0
        var splitIndex = 0
        var nextProgress = 100_000

        while row < total {
            draw.next(world: world, &random)
            let candidateCount = 1 + random.below(8)
            for position in 1...candidateCount where row < total {
                while row >= splitEnds[splitIndex] { splitIndex += 1 }
                let candidate = CandidateDraw(request: draw, position: position, world: world,
                                              missingRate: configuration.missingLabelRate, &random)
                collector.add(surface: draw.surface, click: candidate.clickMissing ? nil : candidate.click,
                              pClick: candidate.pClick, pClickWithoutSequence: candidate.pClickWithoutSequence,
                              save: candidate.hasSave && !candidate.saveMissing ? candidate.save : nil,
                              pSave: candidate.hasSave ? candidate.pSave : nil)
                let writer = writers[splitIndex]
                var out = writer.buffer
                writer.buffer = ByteBuffer()  // move out to avoid copy-on-write of the large buffer
                out.appendRow(request: request, draw, candidate, world: world, surfaceName: surfaceNames[draw.surface])
                writer.buffer = out
                try writer.flushIfFull()
                row += 1
                if row == nextProgress || row == total {
                    progress?(row, total)
                    nextProgress += 100_000
                }
            }
            request += 1
        }
    }
}

/// One request's draws, which all its candidates share (the story on ``SyntheticGenerator``):
/// the surface, the user, the recent topic r, the action sequence (item and action text, the
/// topics and signs of its first 8 actions), the recency-weighted topic similarity
/// sim[t] = sum_{i<8} 0.8^i sign_i [topic_i = t] / sum_i 0.8^i, the context topic and the
/// context itself (search: query words; related pins: the context pin). Its buffers are
/// reused from request to request.
struct RequestDraw {
    var surface = 0
    var user = 0
    var recentTopic = 0
    var contextTopic = 0
    /// The related-pins context pin's fine topic (-1 on the other surfaces).
    var contextFine = -1
    var items = ByteBuffer(capacity: 1024)
    var actions = ByteBuffer(capacity: 512)
    /// The search query's words (empty on the other surfaces).
    var context = ByteBuffer(capacity: 64)
    var sequenceLength = 0
    var sequenceTopics = [Int](repeating: 0, count: 8)
    var sequenceWeights = [Double](repeating: 0, count: 8)
    var similarity = [Double](repeating: 0, count: World.topicCount)

    /// Draws the next request: surface, user and recent topic, then the sequence, then the context.
    mutating func next(world: World, _ random: inout Xoshiro256StarStar) {
        let surfaceDraw = random.uniform()
        surface = surfaceDraw < Truth.trafficShares[0] ? 0
            : surfaceDraw < Truth.trafficShares[0] + Truth.trafficShares[1] ? 1 : 2
        user = world.skewedIndex(world.userCount, random.uniform())
        recentTopic = random.bernoulli(0.5) ? world.staticTopic(user: user, random.uniform()) : random.below(World.topicCount)
        drawSequence(world: world, &random)
        drawContext(world: world, &random)
    }

    /// 2-8 recent actions (10% hides of a random topic, else an engagement on r with
    /// probability 0.8 or on a static topic), then the user's history; none for a cold user.
    private mutating func drawSequence(world: World, _ random: inout Xoshiro256StarStar) {
        items.removeAll()
        actions.removeAll()
        sequenceLength = 0
        let historyStart = world.historyOffsets[user]
        let historyEnd = world.historyOffsets[user + 1]
        if historyEnd > historyStart {
            let recentCount = 2 + random.below(7)
            for _ in 0..<recentCount {
                if random.bernoulli(0.1) {
                    let hiddenTopic = random.below(World.topicCount)
                    appendAction(world.ad(topic: hiddenTopic, &random), action: Truth.hideAction, world: world)
                } else {
                    let topic = random.bernoulli(0.8) ? recentTopic : world.staticTopic(user: user, random.uniform())
                    let ad = world.ad(topic: topic, &random)
                    appendAction(ad, action: Truth.engagementAction(random.uniform()), world: world)
                }
            }
            for index in historyStart..<historyEnd {
                appendAction(Int(world.historyItems[index]), action: Int(world.historyActions[index]), world: world)
            }
        }
        for topic in 0..<World.topicCount { similarity[topic] = 0 }
        for index in 0..<min(8, sequenceLength) {
            similarity[sequenceTopics[index]] += Truth.recencyWeights[index] * sequenceWeights[index]
        }
        for topic in 0..<World.topicCount { similarity[topic] /= Truth.recencyNormalizer }
    }

    /// Appends one action on `ad` to the sequence text and, among the first 8, its topic and sign.
    @inline(__always) private mutating func appendAction(_ ad: Int, action: Int, world: World) {
        if sequenceLength > 0 {
            items.append(UInt8(ascii: " "))
            actions.append(UInt8(ascii: " "))
        }
        items.append(UInt8(ascii: "p"))
        items.append(UInt8(ascii: "c"))
        items.appendInteger(Int(world.adFine[ad]))
        actions.append(UInt8(truncatingIfNeeded: 48 + action))
        if sequenceLength < 8 {
            sequenceTopics[sequenceLength] = Int(world.adTopic[ad])
            sequenceWeights[sequenceLength] = action == Truth.hideAction ? -1 : 1
        }
        sequenceLength += 1
    }

    /// The context topic c (r 0.5, static 0.3, uniform 0.2), then search's 1-3 query words
    /// (each of c, or of a random topic with probability queryWordNoise) or related pins'
    /// context pin (a fine topic of c).
    private mutating func drawContext(world: World, _ random: inout Xoshiro256StarStar) {
        let contextDraw = random.uniform()
        contextTopic = contextDraw < 0.5 ? recentTopic
            : contextDraw < 0.8 ? world.staticTopic(user: user, random.uniform()) : random.below(World.topicCount)
        contextFine = -1
        context.removeAll()
        if surface == 1 {
            let tokenCount = 1 + random.below(3)
            for token in 0..<tokenCount {
                if token > 0 { context.append(UInt8(ascii: " ")) }
                let topic = random.bernoulli(Truth.queryWordNoise) ? random.below(World.topicCount) : contextTopic
                let word = world.skewedIndex(World.wordsPerTopic, random.uniform())
                context.append(UInt8(ascii: "t"))
                context.appendInteger(topic)
                context.append(UInt8(ascii: "w"))
                context.appendInteger(word)
            }
        } else if surface == 2 {
            contextFine = contextTopic * World.finePerTopic + random.below(World.finePerTopic)
        }
    }
}

/// One candidate's draws: its ad (topic by surface), the true click and save probabilities
/// (the logits on ``SyntheticGenerator``, quantised as written), the sampled labels and
/// which of them are missing, and search's query-ad similarity feature.
struct CandidateDraw {
    var position: Int
    var ad: Int
    var advertiser: Int
    var hasSave: Bool
    var pClick: Double
    var pClickWithoutSequence: Double
    var pSave: Double
    var click: Bool
    var save: Bool
    var clickMissing: Bool
    var saveMissing: Bool
    var querySimilarity: Double

    init(request r: RequestDraw, position: Int, world: World, missingRate: Double, _ random: inout Xoshiro256StarStar) {
        let topicCount = World.topicCount
        let candidateTopic: Int
        switch r.surface {
        case 0:
            let draw = random.uniform()
            candidateTopic = draw < 0.3 ? world.staticTopic(user: r.user, random.uniform())
                : draw < 0.5 ? r.recentTopic : random.below(topicCount)
        case 1: candidateTopic = random.bernoulli(0.6) ? r.contextTopic : random.below(topicCount)
        default: candidateTopic = random.bernoulli(0.5) ? r.contextTopic : random.below(topicCount)
        }
        self.position = position
        ad = world.ad(topic: candidateTopic, &random)
        let adTopic = Int(world.adTopic[ad])
        advertiser = Int(world.adAdvertiser[ad])
        let interest = world.userInterest[r.user * topicCount + adTopic]
        let sequenceTerm = Truth.recentWeight * r.similarity[adTopic]
        var contextTerm = 0.0
        querySimilarity = 0
        if r.surface == 1 {
            let match = adTopic == r.contextTopic ? 1.0 : 0.0
            contextTerm = Truth.searchMatchWeight * match
            querySimilarity = 0.7 * match + Truth.querySimilarityNoise * random.normal()
        } else if r.surface == 2 {
            contextTerm = (adTopic == r.contextTopic ? Truth.relatedTopicWeight : 0)
                + (Int(world.adFine[ad]) == r.contextFine ? Truth.relatedFineWeight : 0)
        }
        let staticLogit = Truth.clickIntercept[r.surface] + world.userActivity[r.user] + world.adQuality[ad]
            + world.advertiserQuality[advertiser] + Truth.interestWeight[r.surface] * interest
            + Truth.positionWeight * Foundation.log(Double(position)) + contextTerm
        pClick = Truth.quantize(Truth.sigmoid(staticLogit + sequenceTerm))
        pClickWithoutSequence = Truth.sigmoid(staticLogit)
        hasSave = r.surface != 1
        pSave = 0
        if hasSave {
            let saveLogit = Truth.saveIntercept[r.surface] + Truth.saveInterestWeight * interest
                + world.userSaver[r.user] + Truth.saveRecentWeight * r.similarity[adTopic]
            pSave = Truth.quantize(pClick * Truth.sigmoid(saveLogit))
        }
        click = random.bernoulli(pClick)
        save = click && hasSave && random.uniform() * pClick < pSave
        clickMissing = random.bernoulli(missingRate)
        saveMissing = hasSave && random.bernoulli(missingRate)
    }
}

extension ByteBuffer {
    /// Appends one CSV row in `SyntheticGenerator.columns` order: request id, surface,
    /// labels (empty when missing), true probabilities, user, country, ad, advertiser, pin
    /// category, position, historical CTR, search's query and similarity, related pins'
    /// context pin, the sequence's items and actions.
    mutating func appendRow(request: Int, _ r: RequestDraw, _ c: CandidateDraw, world: World, surfaceName: [UInt8]) {
        append(UInt8(ascii: "r"))
        appendInteger(request)
        append(UInt8(ascii: ","))
        append(surfaceName)
        append(UInt8(ascii: ","))
        if !c.clickMissing { append(c.click ? UInt8(ascii: "1") : UInt8(ascii: "0")) }
        append(UInt8(ascii: ","))
        if c.hasSave && !c.saveMissing { append(c.save ? UInt8(ascii: "1") : UInt8(ascii: "0")) }
        append(UInt8(ascii: ","))
        appendFixed(c.pClick, decimals: 6)
        append(UInt8(ascii: ","))
        if c.hasSave { appendFixed(c.pSave, decimals: 6) }
        append(UInt8(ascii: ","))
        append(UInt8(ascii: "u"))
        appendInteger(r.user)
        append(UInt8(ascii: ","))
        append(World.countryCodes[Int(world.userCountry[r.user])])
        append(UInt8(ascii: ","))
        append(UInt8(ascii: "a"))
        appendInteger(c.ad)
        append(UInt8(ascii: ","))
        append(UInt8(ascii: "v"))
        appendInteger(c.advertiser)
        append(UInt8(ascii: ","))
        append(UInt8(ascii: "p"))
        append(UInt8(ascii: "c"))
        appendInteger(Int(world.adFine[c.ad]))
        append(UInt8(ascii: ","))
        appendInteger(c.position)
        append(UInt8(ascii: ","))
        let historicalCTR = world.adHistoricalCTR[c.ad]
        if !historicalCTR.isNaN { appendFixed(historicalCTR, decimals: 5) }
        append(UInt8(ascii: ","))
        if r.surface == 1 { append(r.context) }
        append(UInt8(ascii: ","))
        if r.surface == 1 { appendFixed(c.querySimilarity, decimals: 4) }
        append(UInt8(ascii: ","))
        if r.surface == 2 {
            append(UInt8(ascii: "p"))
            append(UInt8(ascii: "c"))
            appendInteger(r.contextFine)
        }
        append(UInt8(ascii: ","))
        append(r.items)
        append(UInt8(ascii: ","))
        append(r.actions)
        append(UInt8(ascii: "\n"))
    }
}

/// The constants of the ground truth documented on ``SyntheticGenerator``.
enum Truth {
    static let trafficShares = [0.50, 0.30, 0.20]
    static let clickIntercept = [-3.25, -2.5, -4.1]
    static let interestWeight = [0.6, 0.4, 0.6]
    static let saveIntercept = [-2.0, 0, -1.6]
    static let recentWeight = 2.0
    static let positionWeight = -0.3
    static let searchMatchWeight = 1.2
    static let relatedTopicWeight = 0.6
    static let relatedFineWeight = 0.3
    static let saveInterestWeight = 0.4
    /// Standard deviations of the per-user activity b_u and save propensity s_u, and of
    /// the noise of ad_hist_ctr's logit, and the shares of new ads and cold users: kept
    /// small, because no feature reveals them, and what no feature reveals is a gap
    /// between the oracle and the best model that no training can close.
    static let activityStd = 0.1
    static let saverStd = 0.1
    static let historicalCTRNoise = 0.05
    static let newAdRate = 0.02
    /// The share of query words drawn from a random topic, and the noise of query_ad_sim.
    static let queryWordNoise = 0.1
    static let querySimilarityNoise = 0.2
    static let coldUserRate = 0.05
    /// theta_u = beta_country + favouriteBoost e_favourite + N(0, interestNoise^2 I): one
    /// dominant interest per user, which a history of a few dozen actions reveals.
    static let favouriteBoost = 2.0
    static let interestNoise = 0.3
    static let saveRecentWeight = 0.8
    static let hideAction = 7
    /// Weights of engagement actions 1...6: click, save, closeup, long view, share, comment.
    static let engagementCumulative = [0.35, 0.47, 0.67, 0.85, 0.93, 1.0]
    static let recencyWeights: [Double] = (0..<8).map { Foundation.pow(0.8, Double($0)) }
    static let recencyNormalizer: Double = recencyWeights.reduce(0, +)

    @inline(__always) static func engagementAction(_ uniform: Double) -> Int {
        for (index, bound) in engagementCumulative.enumerated() where uniform < bound { return index + 1 }
        return engagementCumulative.count
    }

    @inline(__always) static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    /// Clamps to [1e-6, 1 - 1e-6] and rounds to 6 decimals: the value written in the file.
    @inline(__always) static func quantize(_ p: Double) -> Double {
        (min(max(p, 1e-6), 1 - 1e-6) * 1e6).rounded() / 1e6
    }
}
