//! RFC 9110 §5.6.7 IMF-fixdate from unix seconds, for `Upload-Expires`. The crate has no clock,
//! so the caller passes the time.

/// The last second IMF-fixdate can write (four-digit years): 9999-12-31 23:59:59.
pub const MAX_HTTP_DATE_SECONDS: u64 = 253_402_300_799;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A moment in UTC, proleptic Gregorian, split into its calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: u64,
    /// 1 to 12.
    pub month: u64,
    /// 1 to 31.
    pub day: u64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl UtcTime {
    /// The calendar fields of `unix_seconds` (H. Hinnant's `civil_from_days`, for
    /// non-negative days).
    pub fn from_unix(unix_seconds: u64) -> UtcTime {
        let z = unix_seconds / 86_400 + 719_468;
        let rem = unix_seconds % 86_400;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        UtcTime {
            year: yoe + era * 400 + u64::from(month <= 2),
            month,
            day: doy - (153 * mp + 2) / 5 + 1,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `unix_seconds`; later than
/// [`MAX_HTTP_DATE_SECONDS`] writes that moment (an expiry that far off is "never").
pub fn imf_fixdate(unix_seconds: u64) -> String {
    let secs = unix_seconds.min(MAX_HTTP_DATE_SECONDS);
    let t = UtcTime::from_unix(secs);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(secs / 86_400 % 7) as usize],
        t.day,
        MONTHS[(t.month - 1) as usize],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}
