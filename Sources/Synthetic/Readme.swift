extension SyntheticGenerator {
    /// The text of DIR/README.txt: the generative process and the measured statistics.
    func readme(report: SyntheticReport) -> String {
        """
        Braid synthetic multi-surface ad-engagement data (braid generate)
        ================================================================
        seed \(configuration.seed), rows \(configuration.rows), \
        missing label rate \(configuration.missingLabelRate)

        Files: train.csv, valid.csv, test.csv (rows i.i.d. given one world of users and
        ads shared by all splits), model.json (SPEC 2.8 config; dense_stats and
        calibration are fitted by `braid train`).

        \(report.summary)

        oracle_auc is the AUC of the true p_click against the drawn click labels: the
        ceiling a model can reach in expectation. no_seq_auc drops the recent-sequence
        term from the true logit: the gap is what only the action sequence can explain.

        Why a unified model wins: every surface shares the same users, ads and user
        interests theta_u, revealed by the action sequence. Each surface alone sees
        a fraction of the rows (related_pins \(percent(Truth.trafficShares[2])), search \(percent(Truth.trafficShares[1]))); a model
        trained on all surfaces learns the sequence encoder, the category embeddings
        and their crosses from every row and transfers them.

        model.json leaves the id columns (user_id, ad_id, advertiser_id) out: at about
        16 rows per user their embeddings memorise training labels within the first
        epoch and lower test AUC. Add them to the schema for larger data sets.

        Generative process
        ------------------
        World (stream 0 of the seed; xoshiro256** seeded by SplitMix64):
        - K = 8 topics, 4 fine pin categories per topic (pc0..pc31), 24 query words
          per topic (t<topic>w<index>).
        - 20 countries with topic bias beta_c ~ N(0, 0.6^2 I).
        - \(report.users) users: a favourite topic f_u ~ softmax(beta_country), theta_u =
          beta_country + \(Truth.favouriteBoost) e_f + N(0, \(Truth.interestNoise)^2 I), activity
          b_u ~ N(0, \(Truth.activityStd)^2), save propensity s_u ~ N(0, \(Truth.saverStd)^2); history of H_u ads
          (\(percent(Truth.coldUserRate)) of users none, else H_u ~ U{4..96}) with topics ~ softmax(theta_u).
          Users are drawn per request with index floor(U u^2) (heavy users first).
        - \(report.advertisers) advertisers (topic, quality q_v ~ N(0, 0.3^2)); \(report.ads) ads
          (topic = advertiser's w.p. 0.8, quality q_a ~ N(0, 0.5^2)); ad_hist_ctr =
          sigmoid(-3.2 + q_a + q_v + N(0, \(Truth.historicalCTRNoise)^2)), empty for \(percent(Truth.newAdRate)) of ads;
          ad_category = the ad's fine category pc<n>.
        Request (stream 1): surface with shares \(Truth.trafficShares.map { percent($0) }.joined(separator: "/")); recent topic r (softmax
        theta_u w.p. 0.5, else uniform); seq_items/seq_actions most recent first
        (seq_items: the fine category pc<n> of each pin acted on, in the table
        `category` shared with ad_category):
        2..8 recent items (10% hides, action 7, of a random topic; else topic r w.p.
        0.8) then the user's history; sim_k = sum over the first 8 items of
        0.8^i * (hide ? -1 : 1) * [topic_i = k] / sum_{i<8} 0.8^i.
        Context topic c (r 0.5 / static 0.3 / uniform 0.2): search query_tokens of
        topic c (each word of a random topic w.p. \(Truth.queryWordNoise)), related_pins context_pin_cat a fine category of c. 1..8 candidates at
        positions 1..n.
        Truth:
          z_click = alpha_s + b_u + q_a + q_v + lambda_s theta_u[t_a] + \(Truth.recentWeight) sim_{t_a}
                    \(Truth.positionWeight) ln(position) + context_s
          alpha = (\(Truth.clickIntercept.map { "\($0)" }.joined(separator: ", "))), \
        lambda = (\(Truth.interestWeight.map { "\($0)" }.joined(separator: ", "))) for (home_feed, search, related_pins)
          search: + \(Truth.searchMatchWeight) [t_a = c]; query_ad_sim = 0.7 [t_a = c] + N(0, \(Truth.querySimilarityNoise)^2)
          related_pins: + \(Truth.relatedTopicWeight) [t_a = c] + \(Truth.relatedFineWeight) [fine_a = context_pin_cat]
          p_click = sigmoid(z_click)
          p_save  = p_click * sigmoid(gamma_s + \(Truth.saveInterestWeight) theta_u[t_a] + s_u + \(Truth.saveRecentWeight) sim_{t_a}),
                    gamma = (\(Truth.saveIntercept[0]) home_feed, \(Truth.saveIntercept[2]) related_pins); no save task on search
          click ~ Bernoulli(p_click); save ~ Bernoulli(p_save / p_click) if click else 0.
        p values are written with 6 decimals (clamped to [1e-6, 1 - 1e-6]) and the
        labels are drawn from the written values.
        """
    }

    /// `0.05` as `5%`.
    private func percent(_ share: Double) -> String { "\(Int((share * 100).rounded()))%" }
}
