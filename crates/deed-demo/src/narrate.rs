//! The demo's voice: short steps, indented details, the real command
//! output, and a few lines of explanation after each rung.

use std::io::IsTerminal;

pub(crate) struct Narrator {
    color: bool,
}

impl Narrator {
    pub fn stdout() -> Self {
        Narrator {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// `println!`, not a raw write to stdout, so a test that runs the
    /// demo captures its narration instead of flooding the test output.
    fn print(&self, text: &str) {
        println!("{text}");
    }

    fn bold(&self, text: &str) -> String {
        if self.color { format!("\x1b[1m{text}\x1b[0m") } else { text.to_string() }
    }

    fn dim(&self, text: &str) -> String {
        if self.color { format!("\x1b[2m{text}\x1b[0m") } else { text.to_string() }
    }

    pub fn title(&self, text: &str) {
        self.print(&format!("{}\n", self.bold(text)));
    }

    pub fn blank(&self) {
        self.print("");
    }

    pub fn step(&self, text: &str) {
        self.print(&format!("▸ {text}"));
    }

    pub fn detail(&self, text: &str) {
        self.print(&format!("    {text}"));
    }

    pub fn rung(&self, name: &str) {
        let rule = "━".repeat(4);
        self.print(&format!("\n{} {} {}\n", rule, self.bold(name), rule));
    }

    /// The command whose output follows.
    pub fn command(&self, command: &str) {
        self.print(&self.dim(&format!("$ {command}")));
    }

    pub fn code(&self, text: &str) {
        for line in text.lines() {
            self.print(&format!("    {}", self.dim(line)));
        }
        self.print("");
    }

    pub fn output(&self, text: &str) {
        self.print(text.trim_end());
        self.print("");
    }

    pub fn explain(&self, lines: &[&str]) {
        for l in lines {
            self.print(l);
        }
    }
}
