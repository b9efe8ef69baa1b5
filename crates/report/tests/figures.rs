//! Every chart kind draws a PNG and an SVG with the marks asked for, and
//! refuses what it cannot draw.

use modcirc_report::{
    bar_chart, line_chart, network_figure, scatter_ci, strip_chart, Bar, LinePanel, NetworkView, Point, ScatterPanel,
    Series, Strip, StripPanel, Summary,
};

fn check(paths: &[std::path::PathBuf]) {
    assert_eq!(paths.len(), 2);
    let png = std::fs::read(&paths[0]).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "{}", paths[0].display());
    let svg = std::fs::read_to_string(&paths[1]).unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
}

#[test]
fn every_kind_of_figure_renders_png_and_svg() {
    let dir = std::env::temp_dir().join(format!("modcirc-report-{}", std::process::id()));
    let s = |m: f64| Summary { mean: m, lo: m * 0.9, hi: m * 1.1, n: 10 };
    let panel = ScatterPanel {
        title: "circle".into(),
        points: vec![
            Point { label: "BIMT".into(), x: s(0.98), y: s(1.2), color: 0, reference: false, dots: vec![] },
            Point { label: "BIMT".into(), x: s(0.985), y: s(1.3), color: 0, reference: true, dots: vec![] },
            Point { label: "L1".into(), x: s(0.95), y: s(2.0), color: 1, reference: false, dots: vec![] },
        ],
        x_domain: Some((0.0, 1.0)),
        whole_intervals: false,
    };
    let paths = scatter_ci(&dir.join("scatter"), "sparsity", "logit diff.", &[panel.clone(), panel], true).unwrap();
    check(&paths);
    // One legend entry per model and one per marker kind, shared by the panels.
    let svg = std::fs::read_to_string(&paths[1]).unwrap();
    for entry in ["BIMT", "L1", "hollow: the paper"] {
        assert_eq!(svg.lines().filter(|l| l.trim() == entry).count(), 1, "{entry}");
    }
    let bars = [
        Bar { label: "A".into(), segments: vec![("opt".into(), 3.0), ("swap".into(), 1.0)], interval: None },
        Bar { label: "B".into(), segments: vec![("opt".into(), 2.0)], interval: Some((1.5, 2.5)) },
    ];
    check(&bar_chart(&dir.join("bars"), "time", "s", &bars).unwrap());
    let band = Some(vec![(0.8, 1.2), (0.4, 0.6)]);
    let lp = LinePanel {
        title: "loss".into(),
        x_label: "step".into(),
        y_label: "mse".into(),
        series: vec![Series { name: "a".into(), points: vec![(1.0, 1.0), (10.0, 0.5)], band }],
        log_x: true,
        log_y: true,
        unit_square: false,
        legend: modcirc_report::Legend::UpperLeft,
    };
    check(&line_chart(&dir.join("lines"), &[lp]).unwrap());
    let strip = |label: &str, color: usize, points: Vec<f64>| Strip {
        label: label.into(),
        color,
        summary: Summary::t_interval(&points).unwrap(),
        points,
    };
    let strips = StripPanel {
        title: "Q".into(),
        y_label: "modularity".into(),
        strips: vec![strip("Vanilla", 0, vec![0.07, 0.08, 0.075]), strip("BIMT", 4, vec![0.22, 0.23, 0.24])],
    };
    let paths = strip_chart(&dir.join("strips"), &[strips.clone(), strips.clone(), strips], 2).unwrap();
    check(&paths);
    // Each group is named once per panel on the x axis.
    let svg = std::fs::read_to_string(&paths[1]).unwrap();
    assert_eq!(svg.lines().filter(|l| l.trim() == "BIMT").count(), 3);
    let sizes = [16usize, 9, 9, 3];
    let coords: Vec<Vec<[f32; 2]>> =
        sizes.iter().map(|&n| (0..n).map(|i| [i as f32 / n as f32, (i % 3) as f32 / 3.0]).collect()).collect();
    let weights: Vec<Vec<f32>> =
        sizes.windows(2).map(|w| (0..w[0] * w[1]).map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0).collect()).collect();
    let weights: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
    let effects: Vec<Vec<f64>> = vec![(0..9).map(|i| i as f64 / 9.0 - 0.2).collect(); 2];
    let view = NetworkView {
        title: "toy",
        coords: &coords,
        weights: &weights,
        circuit: &[vec![0, 4], vec![8]],
        dead: &[vec![1], vec![8]],
        effects: &effects,
        image: (4, 4),
    };
    let paths = network_figure(&dir.join("net"), &view).unwrap();
    check(&paths);
    // Every hidden neuron is labelled by its index; the dead circuit neuron drawn as a ring.
    let svg = std::fs::read_to_string(&paths[1]).unwrap();
    for i in 0..9 {
        assert!(svg.lines().filter(|l| l.trim() == i.to_string()).count() >= 2, "label {i}");
    }
    let e = network_figure(&dir.join("bad"), &NetworkView { weights: &weights[..2], ..view }).unwrap_err().to_string();
    assert!(e.contains("do not fit"), "{e}");
    let e = network_figure(&dir.join("bad"), &NetworkView { image: (3, 5), ..view }).unwrap_err().to_string();
    assert!(e.contains("3x5 image does not have the 16 inputs"), "{e}");
    let e =
        network_figure(&dir.join("bad"), &NetworkView { circuit: &[vec![9], vec![]], ..view }).unwrap_err().to_string();
    assert!(e.contains("circuit neurons do not fit"), "{e}");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty());
    if std::env::var_os("MODCIRC_KEEP_FIGURES").is_none() {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
