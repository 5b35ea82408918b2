//! What AWS fixes for Express workflows and every layer shares: the payload size limit, the
//! naming rules of executions and state machines, and the shape of their ARNs. A leaf
//! module, so `exec`, `tasks` and `pipeline` agree on them without using each other.

/// Largest state input or output, Task result or request payload AWS accepts (256 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// What every ARN this process makes starts with (a local region and account).
pub const ARN_PREFIX: &str = "arn:aws:states:local:000000000000:";

/// ARN of a state machine, in the shape AWS uses.
pub fn state_machine_arn(machine: &str) -> String {
    format!("{ARN_PREFIX}stateMachine:{machine}")
}

/// ARN of an Express execution, in the shape AWS uses.
pub fn execution_arn(machine: &str, name: &str, id: &uuid::Uuid) -> String {
    format!("{ARN_PREFIX}express:{machine}:{name}:{id}")
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reached a terminal state without error.
    Succeeded,
    /// An error nothing caught.
    Failed,
    /// Ran past the execution time cap.
    TimedOut,
}

impl Status {
    /// The name AWS uses (`SUCCEEDED`, `FAILED`, `TIMED_OUT`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
        }
    }
}

/// Longest execution or state machine name AWS accepts, in characters.
pub const MAX_NAME_CHARS: usize = 80;

/// Characters AWS refuses in execution and state machine names (besides whitespace and
/// control characters).
pub const FORBIDDEN_IN_NAMES: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";

/// The bytes a name may hold as ASCII characters: printable, not a space, not forbidden.
/// Every other byte (non-ASCII ones too) is judged by [`check_name`]'s full rules.
const ASCII_NAME_BYTE: [bool; 256] = {
    let mut ok = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        ok[b] = true;
        b += 1;
    }
    let forbidden = FORBIDDEN_IN_NAMES.as_bytes();
    let mut i = 0;
    while i < forbidden.len() {
        ok[forbidden[i] as usize] = false;
        i += 1;
    }
    ok
};

/// Which of AWS's naming rules a name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Empty.
    Empty,
    /// Over [`MAX_NAME_CHARS`] characters.
    TooLong,
    /// A whitespace character at this character index.
    Whitespace(char, usize),
    /// A control character (U+0000-U+001F, U+007F-U+009F) at this character index.
    Control(char, usize),
    /// One of `< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /` at this character index.
    Forbidden(char, usize),
}

impl std::fmt::Display for NameRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameRule::Empty => write!(f, "is empty (names have 1 to {MAX_NAME_CHARS} characters)"),
            NameRule::TooLong => write!(f, "is longer than {MAX_NAME_CHARS} characters"),
            NameRule::Whitespace(c, at) => {
                write!(
                    f,
                    "has whitespace ({:?}, U+{:04X}) at character {at}",
                    c, *c as u32
                )
            }
            NameRule::Control(c, at) => {
                write!(
                    f,
                    "has a control character (U+{:04X}) at character {at}",
                    *c as u32
                )
            }
            NameRule::Forbidden(c, at) => write!(
                f,
                "has {c:?} at character {at}; names may not contain any of {FORBIDDEN_IN_NAMES}"
            ),
        }
    }
}

/// Checks a name against the rules AWS applies to execution and state machine names:
/// 1 to 80 characters, no whitespace, no control characters, none of [`FORBIDDEN_IN_NAMES`].
pub fn check_name(s: &str) -> Result<(), NameRule> {
    if s.is_empty() {
        return Err(NameRule::Empty);
    }
    // Nearly every name is short ASCII: one table lookup per byte, where the loop below
    // searched the forbidden characters for each one (~2 % of a shard's time per request).
    if s.len() <= MAX_NAME_CHARS && s.bytes().all(|b| ASCII_NAME_BYTE[usize::from(b)]) {
        return Ok(());
    }
    for (at, c) in s.chars().enumerate() {
        // Stops at the limit: a 600 KB name costs 81 characters of work.
        if at >= MAX_NAME_CHARS {
            return Err(NameRule::TooLong);
        }
        if c.is_control() {
            return Err(NameRule::Control(c, at));
        }
        if c.is_whitespace() {
            return Err(NameRule::Whitespace(c, at));
        }
        if FORBIDDEN_IN_NAMES.contains(c) {
            return Err(NameRule::Forbidden(c, at));
        }
    }
    Ok(())
}

/// What names one execution: its state machine, its name and the id its ARN ends with.
#[derive(Debug, Clone, Copy)]
pub struct Execution<'a> {
    /// The state machine's name.
    pub machine: &'a str,
    /// The execution's name.
    pub name: &'a str,
    /// The id the execution ARN ends with.
    pub id: &'a uuid::Uuid,
}

impl Execution<'_> {
    /// The execution ARN as a String (for the Context object and logs, which keep one).
    pub fn arn(&self) -> String {
        execution_arn(self.machine, self.name, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_aws_rules() {
        assert_eq!(check_name("order-12345_ok.v2"), Ok(()));
        // The ASCII table agrees with the full rules on every ASCII character, alone and
        // at the 80-character limit.
        for b in 0u8..0x80 {
            let c = char::from(b);
            let full_rules_ok =
                !c.is_control() && !c.is_whitespace() && !FORBIDDEN_IN_NAMES.contains(c);
            assert_eq!(ASCII_NAME_BYTE[usize::from(b)], full_rules_ok, "{b:#x}");
            assert_eq!(check_name(&c.to_string()).is_ok(), full_rules_ok, "{b:#x}");
        }
        assert_eq!(check_name(&"n".repeat(80)), Ok(()));
        assert_eq!(check_name("é日本"), Ok(()));
        assert_eq!(check_name(""), Err(NameRule::Empty));
        assert_eq!(check_name(&"n".repeat(81)), Err(NameRule::TooLong));
        assert_eq!(check_name("a b"), Err(NameRule::Whitespace(' ', 1)));
        assert_eq!(
            check_name("a\u{3000}"),
            Err(NameRule::Whitespace('\u{3000}', 1))
        );
        assert_eq!(check_name("\u{0}"), Err(NameRule::Control('\u{0}', 0)));
        assert_eq!(check_name("a\u{7f}"), Err(NameRule::Control('\u{7f}', 1)));
        assert_eq!(check_name("a\u{9f}"), Err(NameRule::Control('\u{9f}', 1)));
        assert_eq!(check_name("a\tb"), Err(NameRule::Control('\t', 1)));
        for c in "<>{}[]?*\"#%\\^|~`$&,;:/".chars() {
            assert_eq!(
                check_name(&format!("ok{c}")),
                Err(NameRule::Forbidden(c, 2)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn a_long_name_is_refused_after_81_characters_of_work() {
        let huge = "n".repeat(600_000);
        assert_eq!(check_name(&huge), Err(NameRule::TooLong));
    }
}
