//! The server's TOML config loader (`postern_server::config::Config::parse`,
//! what `postern check` and start-up run): every problem is an error that
//! names a line of the file, never a panic or a hang.

use std::path::PathBuf;

use postern_server::config::{Config, Machine, Source};

/// The name errors must carry.
const FILE: &str = "fuzz.toml";

/// Parses `data` as a config file. Accepted: every parameter expands
/// (`postern config`, `-n`, `-d`). Refused: each error names the file and
/// a line that exists.
pub fn config(data: &[u8]) {
    // A file that is not UTF-8 is refused by Config::load before parsing;
    // the parser is still fed its lossy text, which is as hostile.
    let text = String::from_utf8_lossy(data);
    let machine = Machine {
        hostname: "mail.example.org".to_owned(),
        data_directory: PathBuf::from("/nonexistent/postern-fuzz"),
    };
    match Config::parse(Source::named(FILE, &text), machine, false) {
        Ok(config) => {
            let _ = config.all();
            let _ = config.non_default();
            let _ = config.defaults();
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without saying why");
            let lines = text.split('\n').count();
            for e in &errors.0 {
                assert_eq!(e.file, FILE);
                assert!(e.line <= lines, "error at line {} of {lines}: {e}", e.line);
                assert!(!e.message.is_empty(), "empty message: {e:?}");
            }
            let _ = errors.to_string();
        }
    }
}
