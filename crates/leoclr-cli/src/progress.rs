/// A progress bar in the CLI's one style; `template` is indicatif's, hidden when `quiet`.
pub fn bar(
    len: usize,
    prefix: impl Into<String>,
    template: &str,
    quiet: bool,
) -> indicatif::ProgressBar {
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len as u64)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.into());
    pb
}
