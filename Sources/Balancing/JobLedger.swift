/// The jobs handed out by the policies that do not wait (every policy but the queue): a token per
/// redirect, counted in flight per server until the server reports it or it expires.
public final class JobLedger {
  private var jobs: [String: (server: ServerAddress, issued: UInt64)] = [:]
  private var counts: [ServerAddress: Int] = [:]
  public private(set) var issued = 0
  public private(set) var reported = 0
  public private(set) var expired = 0

  public init() {}

  /// Jobs of `server` not reported yet.
  public func inFlight(_ server: ServerAddress) -> Int { counts[server] ?? 0 }
  /// Jobs not reported yet, all servers.
  public var totalInFlight: Int { jobs.count }

  /// Records a job sent to `server` with `token`.
  public func issue(_ server: ServerAddress, token: String, now: UInt64) {
    jobs[token] = (server, now)
    counts[server, default: 0] += 1
    issued += 1
  }

  /// A report for `server`: with a token, that job ends; without one, its oldest job does.
  /// Returns false if there was no such job.
  public func report(_ server: ServerAddress, token: String?) -> Bool {
    let key: String
    if let token {
      guard let job = jobs[token], job.server == server else { return false }
      key = token
    } else {
      guard
        let oldest = jobs.filter({ $0.value.server == server }).min(by: {
          $0.value.issued < $1.value.issued
        })
      else { return false }
      key = oldest.key
    }
    end(key)
    reported += 1
    return true
  }

  /// Forgets jobs issued before `cutoff` (their client never came, or the report was lost).
  public func expire(issuedBefore cutoff: UInt64) {
    for (token, job) in jobs where job.issued < cutoff {
      end(token)
      expired += 1
    }
  }

  /// Forgets the jobs of a server that left the pool or went down.
  public func forget(_ server: ServerAddress) {
    for (token, job) in jobs where job.server == server {
      end(token)
      expired += 1
    }
  }

  private func end(_ token: String) {
    guard let job = jobs.removeValue(forKey: token) else { return }
    counts[job.server, default: 1] -= 1
    if counts[job.server] == 0 { counts[job.server] = nil }
  }
}
