//! A token bucket: `rate` tokens per second, at most `2 × rate` kept (the contract's burst).
//! Pure: the caller passes the time, so tests need no clock.

/// One app's bucket of new uploads.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date (ms).
    at_ms: u64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, now_ms: u64) -> Bucket {
        Bucket {
            rate,
            tokens: Bucket::burst_of(rate),
            at_ms: now_ms,
        }
    }

    fn burst_of(rate: f64) -> f64 {
        (2.0 * rate).max(1.0)
    }

    /// Follows a changed registration without refilling the bucket.
    pub fn set_rate(&mut self, rate: f64) {
        self.rate = rate;
        self.tokens = self.tokens.min(Bucket::burst_of(rate));
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(Bucket::burst_of(self.rate));
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// Takes a token, or says in how many milliseconds one will be there.
    pub fn take(&mut self, now_ms: u64) -> Result<(), u64> {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait_s = (1.0 - self.tokens) / self.rate;
            Err((wait_s * 1000.0).ceil() as u64)
        }
    }

    /// Gives back a token taken for an upload that a later check refused.
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(Bucket::burst_of(self.rate));
    }
}

#[cfg(test)]
mod tests {
    use super::Bucket;

    #[test]
    fn a_burst_of_twice_the_rate_then_the_rate() {
        let mut b = Bucket::new(2.0, 0);
        for _ in 0..4 {
            assert_eq!(b.take(0), Ok(()));
        }
        // Empty: the next token comes in 1/rate s.
        assert_eq!(b.take(0), Err(500));
        assert_eq!(b.take(499), Err(2));
        assert_eq!(b.take(500), Ok(()));
        // A long pause refills only up to the burst.
        assert!((0..4).all(|_| b.take(60_000).is_ok()));
        assert!(b.take(60_000).is_err());
    }

    #[test]
    fn fractional_rates_and_give_back() {
        let mut b = Bucket::new(0.5, 0);
        assert_eq!(b.take(0), Ok(()));
        assert_eq!(b.take(0), Err(2000));
        b.give_back();
        assert_eq!(b.take(0), Ok(()));
        b.set_rate(10.0);
        // 0.1 s at the new rate brings one token.
        assert_eq!(b.take(100), Ok(()));
    }
}
