// One engine step as plan → execute → apply: the planner picks the rows, the engine runs them in one batched
// forward pass (sampling each row as it is emitted), and apply folds the results back: scores, tokens, endings.
import Inference

extension EngineLoop {
    mutating func step() {
        let plan = StepPlanner(prefillChunk: config.prefillChunk, policy: policy).plan(running.items.map { r in
            StepPlanner.Row(
                priority: r.priority, order: r.order, suspended: r.suspended, cached: r.cached,
                total: r.generation.tokens.count,
                scoring: r.job.request.promptLogprobs && !r.generation.promptLogprobsSent,
                generates: r.job.maxTokens > 0, embeds: r.embedding != nil)
        })
        guard !plan.isEmpty else { return }
        lastBatch = plan.items.count
        let started = core.clock.monotonic()
        let samples: [Int: SampledToken]
        do {
            samples = try execute(plan)
        } catch {
            let message = "engine step failed: \(error)"
            for i in plan.items.map(\.row).sorted(by: >) { end(i, .failed(.engine(message))) }
            return
        }
        let now = core.clock.monotonic()
        core.observer?.stepFinished(batchSize: plan.items.count, tokens: plan.items.reduce(0) { $0 + $1.count },
                                    seconds: now - started)
        apply(plan, samples, now: now)
    }

    /// Runs the plan on the engine. Prompt scores are written as their rows arrive (the logits buffer lives only
    /// during the call) and each generating row is sampled there too; returns the samples by plan item.
    private mutating func execute(_ plan: StepPlan) throws -> [Int: SampledToken] {
        let keepScores = blocks.cachingEnabled
        for item in plan.items where item.scoring {
            let count = running[item.row].job.request.promptTokens.count
            if running[item.row].promptLogprobs == nil { running[item.row].promptLogprobs = Array(repeating: nil, count: count) }
            if keepScores && running[item.row].promptScores == nil {
                running[item.row].promptScores = Array(repeating: nil, count: count)
            }
        }
        let batch = plan.items.map { item in
            StepSequence(blockTable: running[item.row].blocks, position: item.start,
                         tokens: Array(running[item.row].generation.tokens[item.start..<(item.start + item.count)]),
                         logits: item.logits, writesFrom: running[item.row].shared)
        }
        var samples: [Int: SampledToken] = [:]
        try engine.step(batch) { b, t, row in
            let item = plan.items[b]
            let position = item.start + t
            if item.logits == .hiddenStates {
                running[item.row].embedding?.add(UnsafeBufferPointer(row), position: position)
                return
            }
            let request = running[item.row].job.request
            if item.scoring && position + 1 < request.promptTokens.count {
                let target = request.promptTokens[position + 1]
                let wanted = request.logprobs ?? 0
                // With the cache on, the kept number of alternatives is computed, so the blocks serve any later
                // request; this one reports its own number, a prefix of them.
                let computed = keepScores ? Swift.max(wanted, BlockScores.kept) : wanted
                let (logprob, top) = Sampler.score(target, in: row, top: computed)
                let score = PromptTokenLogprob(
                    token: TokenLogprob(token: target, bytes: decoder.bytes(of: target), logprob: logprob),
                    top: withBytes(Array(top.prefix(wanted))))
                running[item.row].promptLogprobs?[position + 1] = score
                running[item.row].promptScores?[position + 1] = PositionScore(logprob: logprob, top: top)
            }
            if position == running[item.row].generation.tokens.count - 1 && running[item.row].job.maxTokens > 0 {
                let remaining = running[item.row].job.maxTokens - running[item.row].generation.generated
                let mask = running[item.row].job.generation!.constraint?.allowedTokens(remaining: remaining)
                samples[b] = running[item.row].job.generation!.sampler.sample(row, topLogprobs: request.logprobs,
                                                                               allowed: mask)
            }
        }
        return samples
    }

    /// Folds a step's results into the running set: the cache advances, prompt scores go out once, sampled tokens
    /// stream, and the sequences that ended are ended (highest index first, so the others keep theirs).
    private mutating func apply(_ plan: StepPlan, _ samples: [Int: SampledToken], now: Double) {
        var endings: [(index: Int, outcome: SchedulerCore.Outcome)] = []
        for (b, item) in plan.items.enumerated() {
            let i = item.row
            running[i].cached += item.count
            indexFullBlocks(i)
            if running[i].cached == running[i].generation.tokens.count {
                if running[i].job.prefillDoneMono == nil { running[i].job.prefillDoneMono = now }
                if item.scoring, let scores = running[i].promptLogprobs {
                    running[i].job.generation!.promptLogprobsSent = true
                    running[i].promptLogprobs = nil
                    running[i].job.onEvent(.promptLogprobs(scores))
                }
                if let embedding = running[i].embedding {
                    // The whole answer; `stop` because nothing was cut short.
                    running[i].job.onEvent(.embedding(embedding.vector))
                    endings.append((i, .finished(.stop)))
                    continue
                }
                if running[i].job.maxTokens == 0 {
                    endings.append((i, .finished(.length)))
                    continue
                }
            }
            if let sample = samples[b], let finish = accept(sample, at: i, now: now) {
                endings.append((i, .finished(finish)))
            }
        }
        for e in endings.sorted(by: { $0.index > $1.index }) { end(e.index, e.outcome) }
    }

    /// Blocks the step filled join the prefix cache's index under the hash of their content in context. A full
    /// block is never written again (positions only grow), so it can be shared from now on.
    private mutating func indexFullBlocks(_ i: Int) {
        guard let root = running[i].job.hashRoot else { return }
        let full = running[i].cached / config.blockSize
        guard full > running[i].indexedBlocks else { return }
        if running[i].job.blockHashes.count < full {
            let tokens = running[i].generation.tokens
            BlockHash.extend(&running[i].job.blockHashes, tokens: tokens, blockSize: config.blockSize, root: root)
        }
        let promptCount = running[i].job.request.promptTokens.count
        for b in running[i].indexedBlocks..<full {
            let hash = running[i].job.blockHashes[b]
            blocks.register(running[i].blocks[b], as: hash)
            // A block inside the prompt whose every position was scored keeps its scores.
            let range = (b * config.blockSize)..<((b + 1) * config.blockSize)
            if let scores = running[i].promptScores, range.upperBound <= promptCount,
               range.allSatisfy({ $0 == 0 || scores[$0] != nil }) {
                blocks.attach(BlockScores(top: BlockScores.kept, positions: Array(scores[range])), to: hash)
            }
        }
        running[i].indexedBlocks = full
    }

    /// Streams one sampled token; returns the finish reason if this token ends the job. Mutates the running entry in
    /// place so the token history and text buffers are never copied per token.
    private mutating func accept(_ sample: SampledToken, at i: Int, now: Double) -> FinishReason? {
        let token = sample.token
        let request = running[i].job.request
        running[i].job.generation!.tokens.append(token)
        running[i].job.generation!.generated += 1
        running[i].job.generation!.constraint?.accept(token)
        var text: String
        var finish: FinishReason?
        if decoder.endOfGenerationTokens.contains(token) {
            text = running[i].job.generation!.text.finish()
            finish = .stop
        } else {
            let pushed = running[i].job.generation!.text.push(decoder.bytes(of: token))
            text = pushed.text
            if pushed.stopped {
                finish = .stop
            } else if running[i].generation.constraint?.isFinished == true {
                // The structure is complete and nothing may follow: stop here rather than spend a token on EOS.
                text += running[i].job.generation!.text.finish()
                finish = .stop
            } else if running[i].generation.generated >= running[i].job.maxTokens {
                text += running[i].job.generation!.text.finish()
                finish = .length
            }
        }
        var logprob: TokenLogprob?
        var top: [TokenLogprob] = []
        if request.logprobs != nil, let lp = sample.logprob {
            logprob = TokenLogprob(token: token, bytes: decoder.bytes(of: token), logprob: lp)
            top = withBytes(sample.top)
        }
        if let last = running[i].job.lastTokenMono {
            core.observer?.tokenEmitted(id: request.id, priority: request.priority, gapSeconds: now - last)
        } else {
            running[i].job.firstTokenMono = now
            running[i].job.firstTokenUnix = core.clock.unix()
            core.observer?.firstToken(id: request.id, priority: request.priority,
                                      ttftSeconds: now - running[i].job.enqueuedMono)
        }
        running[i].job.lastTokenMono = now
        running[i].job.onEvent(.token(GeneratedToken(token: token, text: text, logprob: logprob, topLogprobs: top)))
        return finish
    }

    /// Scores as the API reports them: with each token's bytes.
    func withBytes(_ scores: [TokenScore]) -> [TokenLogprob] {
        scores.map { TokenLogprob(token: $0.token, bytes: decoder.bytes(of: $0.token), logprob: $0.logprob) }
    }
}
