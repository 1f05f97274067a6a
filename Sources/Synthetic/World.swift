import Foundation
import Random

/// Users, advertisers and ads of one synthetic data set, drawn once from stream 0 of
/// the seed (see ``SyntheticGenerator`` for the distributions).
struct World {
    static let topicCount = 8
    static let finePerTopic = 4
    static let wordsPerTopic = 24
    static let countryCodeStrings = ["US", "GB", "DE", "FR", "BR", "IN", "JP", "CA", "MX", "ES",
                                     "IT", "AU", "NL", "SE", "PL", "KR", "AR", "TR", "ZA", "NG"]
    static let countryCodes = countryCodeStrings.map { Array($0.utf8) }

    let userCount: Int
    let userCountry: [Int32]
    /// theta, [users, K] row-major.
    let userInterest: [Double]
    /// Cumulative softmax(theta), [users, K].
    let userInterestCumulative: [Double]
    let userActivity: [Double]
    let userSaver: [Double]
    /// History of user u is historyItems[historyOffsets[u] ..< historyOffsets[u + 1]].
    let historyOffsets: [Int]
    let historyItems: [Int32]
    let historyActions: [UInt8]
    let advertiserQuality: [Double]
    let adAdvertiser: [Int32]
    let adTopic: [UInt8]
    let adFine: [UInt8]
    let adQuality: [Double]
    /// NaN where the ad is new (the cell is written empty).
    let adHistoricalCTR: [Double]
    let adsByTopic: [[Int32]]

    init(configuration: SyntheticConfiguration) {
        var random = Xoshiro256StarStar(seed: configuration.seed, stream: 0)
        let topicCount = Self.topicCount
        let countryCount = Self.countryCodes.count
        var countryBias = [Double](repeating: 0, count: countryCount * topicCount)
        for index in countryBias.indices { countryBias[index] = 0.6 * random.normal() }
        // softmax(beta_c) per country, cumulative: where a user's favourite topic is drawn from.
        var countryCumulative = [Double](repeating: 0, count: countryCount * topicCount)
        for country in 0..<countryCount {
            var total = 0.0
            for topic in 0..<topicCount {
                total += Foundation.exp(countryBias[country * topicCount + topic])
                countryCumulative[country * topicCount + topic] = total
            }
            for topic in 0..<topicCount { countryCumulative[country * topicCount + topic] /= total }
        }

        let advertiserCount = configuration.resolvedAdvertisers
        var advertiserTopic = [Int](repeating: 0, count: advertiserCount)
        var advertiserQuality = [Double](repeating: 0, count: advertiserCount)
        for advertiser in 0..<advertiserCount {
            advertiserTopic[advertiser] = random.below(topicCount)
            advertiserQuality[advertiser] = 0.3 * random.normal()
        }

        let adCount = configuration.resolvedAds
        var adAdvertiser = [Int32](repeating: 0, count: adCount)
        var adTopic = [UInt8](repeating: 0, count: adCount)
        var adFine = [UInt8](repeating: 0, count: adCount)
        var adQuality = [Double](repeating: 0, count: adCount)
        var adHistoricalCTR = [Double](repeating: 0, count: adCount)
        var adsByTopic = [[Int32]](repeating: [], count: topicCount)
        for ad in 0..<adCount {
            let advertiser = random.below(advertiserCount)
            let topic = random.bernoulli(0.8) ? advertiserTopic[advertiser] : random.below(topicCount)
            adAdvertiser[ad] = Int32(advertiser)
            adTopic[ad] = UInt8(topic)
            adFine[ad] = UInt8(topic * Self.finePerTopic + random.below(Self.finePerTopic))
            adQuality[ad] = 0.5 * random.normal()
            let noise = Truth.historicalCTRNoise * random.normal()
            adHistoricalCTR[ad] = random.bernoulli(Truth.newAdRate) ? .nan
                : Truth.sigmoid(-3.2 + adQuality[ad] + advertiserQuality[advertiser] + noise)
            adsByTopic[topic].append(Int32(ad))
        }

        let userCount = configuration.resolvedUsers
        var userCountry = [Int32](repeating: 0, count: userCount)
        var userInterest = [Double](repeating: 0, count: userCount * topicCount)
        var userInterestCumulative = [Double](repeating: 0, count: userCount * topicCount)
        var userActivity = [Double](repeating: 0, count: userCount)
        var userSaver = [Double](repeating: 0, count: userCount)
        var historyOffsets = [Int](repeating: 0, count: userCount + 1)
        var historyItems: [Int32] = []
        var historyActions: [UInt8] = []
        historyItems.reserveCapacity(userCount * 45)
        historyActions.reserveCapacity(userCount * 45)

        self.userCount = userCount
        self.adTopic = adTopic
        self.adsByTopic = adsByTopic
        for user in 0..<userCount {
            let country = Self.skewedIndex(countryCount, random.uniform())
            userCountry[user] = Int32(country)
            let favourite = Self.sampleCumulative(countryCumulative, offset: country * topicCount, count: topicCount,
                                                  random.uniform())
            var total = 0.0
            for topic in 0..<topicCount {
                let theta = countryBias[country * topicCount + topic] + Truth.interestNoise * random.normal()
                    + (topic == favourite ? Truth.favouriteBoost : 0)
                userInterest[user * topicCount + topic] = theta
                total += Foundation.exp(theta)
                userInterestCumulative[user * topicCount + topic] = total
            }
            for topic in 0..<topicCount { userInterestCumulative[user * topicCount + topic] /= total }
            userActivity[user] = Truth.activityStd * random.normal()
            userSaver[user] = Truth.saverStd * random.normal()
            let historyLength = random.bernoulli(Truth.coldUserRate) ? 0 : 4 + random.below(93)
            for _ in 0..<historyLength {
                let topic = Self.sampleCumulative(userInterestCumulative, offset: user * topicCount,
                                                  count: topicCount, random.uniform())
                historyItems.append(Int32(Self.ad(adsByTopic: adsByTopic, adCount: adCount, topic: topic, &random)))
                historyActions.append(UInt8(random.bernoulli(0.05) ? Truth.hideAction
                    : Truth.engagementAction(random.uniform())))
            }
            historyOffsets[user + 1] = historyItems.count
        }
        self.userCountry = userCountry
        self.userInterest = userInterest
        self.userInterestCumulative = userInterestCumulative
        self.userActivity = userActivity
        self.userSaver = userSaver
        self.historyOffsets = historyOffsets
        self.historyItems = historyItems
        self.historyActions = historyActions
        self.advertiserQuality = advertiserQuality
        self.adAdvertiser = adAdvertiser
        self.adFine = adFine
        self.adQuality = adQuality
        self.adHistoricalCTR = adHistoricalCTR
    }

    /// floor(count * u^2): index 0 is the most frequent.
    @inline(__always) static func skewedIndex(_ count: Int, _ uniform: Double) -> Int {
        min(count - 1, Int(Double(count) * uniform * uniform))
    }

    @inline(__always) func skewedIndex(_ count: Int, _ uniform: Double) -> Int {
        Self.skewedIndex(count, uniform)
    }

    @inline(__always) static func sampleCumulative(_ cumulative: [Double], offset: Int, count: Int,
                                                   _ uniform: Double) -> Int {
        for index in 0..<(count - 1) where uniform < cumulative[offset + index] { return index }
        return count - 1
    }

    /// A topic drawn from softmax(theta_user).
    @inline(__always) func staticTopic(user: Int, _ uniform: Double) -> Int {
        Self.sampleCumulative(userInterestCumulative, offset: user * Self.topicCount, count: Self.topicCount, uniform)
    }

    /// An ad of `topic` with the popularity skew (any ad if the topic has none).
    @inline(__always) static func ad(adsByTopic: [[Int32]], adCount: Int, topic: Int,
                                     _ random: inout Xoshiro256StarStar) -> Int {
        let list = adsByTopic[topic]
        let uniform = random.uniform()
        if list.isEmpty { return min(adCount - 1, Int(uniform * Double(adCount))) }
        return Int(list[skewedIndex(list.count, uniform)])
    }

    @inline(__always) func ad(topic: Int, _ random: inout Xoshiro256StarStar) -> Int {
        Self.ad(adsByTopic: adsByTopic, adCount: adTopic.count, topic: topic, &random)
    }
}
