//! EfficientNet-Lite0's forward pass on plain `f32` buffers.
//!
//! The network is small enough that a framework buys little: 1×1 convolutions are matrix
//! products (≈ 90 % of the 0.4 GMAC, done by `matrixmultiply`'s SIMD sgemm), the 3×3/5×5
//! depthwise convolutions and the stem are a few loops. BatchNorm was folded into every
//! convolution's weight and bias by `scripts/prepare-image-model.py`, so each layer is
//! conv + bias (+ ReLU6). Padding is TensorFlow's "SAME" (the weights come from the TF
//! reference model): with an even input and stride 2 the extra row/column goes at the
//! bottom/right, which differs from PyTorch's symmetric padding.

use safetensors::{Dtype, SafeTensors};

/// Metadata `format` tag written by `scripts/prepare-image-model.py`.
pub(crate) const FORMAT_TAG: &str = "gid-efficientnet-lite0-bnfolded/1";

/// Side of the square input image.
pub(crate) const INPUT_SIZE: usize = 224;
/// Number of ImageNet classes the classifier scores.
pub(crate) const NUM_CLASSES: usize = 1000;
const STEM_CHANNELS: usize = 32;
const HEAD_CHANNELS: usize = 1280;

/// (repeats, kernel, stride, expand ratio, input channels, output channels) per stage: the
/// EfficientNet-B0 layout, without squeeze-and-excitation (the "Lite" variant).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Why a weights file could not be turned into the network (the caller adds the path).
#[derive(Debug)]
pub(crate) struct WeightsError(pub(crate) String);

/// A channels × height × width activation, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeatureMap {
    pub(crate) data: Vec<f32>,
    pub(crate) channels: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
}

impl FeatureMap {
    pub(crate) fn new(data: Vec<f32>, channels: usize, height: usize, width: usize) -> Self {
        assert_eq!(data.len(), channels * height * width, "feature map size");
        Self {
            data,
            channels,
            height,
            width,
        }
    }

    fn plane(&self) -> usize {
        self.height * self.width
    }
}

/// A convolution whose BatchNorm is folded in. `weight` is OIHW (`in_channels` is per group:
/// 1 for depthwise).
#[derive(Debug, Clone)]
pub(crate) struct Conv {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) out_channels: usize,
    pub(crate) in_channels: usize,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
}

#[derive(Debug)]
struct Block {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    residual: bool,
}

/// EfficientNet-Lite0 with BatchNorm folded in, ready for inference.
#[derive(Debug)]
pub(crate) struct EfficientNetLite0 {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    fc_weight: Vec<f32>,
    fc_bias: Vec<f32>,
}

impl EfficientNetLite0 {
    /// Builds the network from the bytes of the `.safetensors` file the prep script writes,
    /// checking the format tag and every tensor's name, dtype and shape.
    pub(crate) fn from_safetensors(bytes: &[u8]) -> Result<Self, WeightsError> {
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| WeightsError(format!("not a safetensors file ({e})")))?;
        let format = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str);
        if format != Some(FORMAT_TAG) {
            return Err(WeightsError(format!(
                "format tag is {format:?}, expected {FORMAT_TAG:?} (a file written by \
                 scripts/prepare-image-model.py)"
            )));
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| WeightsError(format!("not a safetensors file ({e})")))?;
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, WeightsError> {
            let view = st
                .tensor(name)
                .map_err(|_| WeightsError(format!("tensor {name} is missing")))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(WeightsError(format!(
                    "tensor {name} is {} of shape {}, expected F32 of shape {}",
                    view.dtype(),
                    shape_text(view.shape()),
                    shape_text(shape)
                )));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(WeightsError(format!(
                    "tensor {name} has a non-finite value at {i}"
                )));
            }
            Ok(values)
        };
        let conv = |name: &str, out: usize, inp: usize, k: usize, stride: usize| {
            Ok::<_, WeightsError>(Conv {
                weight: get(&format!("{name}.weight"), &[out, inp, k, k])?,
                bias: get(&format!("{name}.bias"), &[out])?,
                out_channels: out,
                in_channels: inp,
                kernel: k,
                stride,
            })
        };

        let stem = conv("stem", STEM_CHANNELS, 3, 3, 2)?;
        let mut blocks = Vec::with_capacity(16);
        for (i, (k, stride, expand, cin, cout)) in block_specs().enumerate() {
            let mid = cin * expand;
            blocks.push(Block {
                expand: if expand == 1 {
                    None
                } else {
                    Some(conv(&format!("blocks.{i}.expand"), mid, cin, 1, 1)?)
                },
                depthwise: conv(&format!("blocks.{i}.depthwise"), mid, 1, k, stride)?,
                project: conv(&format!("blocks.{i}.project"), cout, mid, 1, 1)?,
                residual: stride == 1 && cin == cout,
            });
        }
        let head = conv("head", HEAD_CHANNELS, 320, 1, 1)?;
        let fc_weight = get("fc.weight", &[NUM_CLASSES, HEAD_CHANNELS])?;
        let fc_bias = get("fc.bias", &[NUM_CLASSES])?;
        // weight + bias for: stem, head, fc, 16 depthwise, 16 project, 15 expand convolutions.
        let expected = 2 * (3 + 16 + 16 + 15);
        if st.len() != expected {
            return Err(WeightsError(format!(
                "{} tensors, expected {expected}",
                st.len()
            )));
        }
        Ok(Self {
            stem,
            blocks,
            head,
            fc_weight,
            fc_bias,
        })
    }

    /// ImageNet logits for one preprocessed 3 × 224 × 224 image.
    pub(crate) fn forward(&self, input: &FeatureMap) -> Vec<f32> {
        assert_eq!(
            (input.channels, input.height, input.width),
            (3, INPUT_SIZE, INPUT_SIZE),
            "input must be 3 x 224 x 224"
        );
        let mut x = dense_conv(input, &self.stem, true);
        for block in &self.blocks {
            let expanded = block.expand.as_ref().map(|e| pointwise(&x, e, true, None));
            let dw = depthwise(expanded.as_ref().unwrap_or(&x), &block.depthwise, true);
            let residual = block.residual.then_some(&x);
            x = pointwise(&dw, &block.project, false, residual);
        }
        let features = pointwise(&x, &self.head, true, None);
        let pooled: Vec<f32> = features
            .data
            .chunks_exact(features.plane())
            .map(|plane| plane.iter().sum::<f32>() / plane.len() as f32)
            .collect();
        let mut logits = self.fc_bias.clone();
        matmul_acc(
            NUM_CLASSES,
            HEAD_CHANNELS,
            1,
            &self.fc_weight,
            &pooled,
            &mut logits,
        );
        logits
    }
}

/// (kernel, stride, expand ratio, in channels, out channels) of each of the 16 MBConv blocks.
/// A tensor shape as people write it: `32x3x3x3`.
fn shape_text(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

fn block_specs() -> impl Iterator<Item = (usize, usize, usize, usize, usize)> {
    STAGES.iter().flat_map(|&(repeats, k, s, e, cin, cout)| {
        (0..repeats).map(move |r| {
            if r == 0 {
                (k, s, e, cin, cout)
            } else {
                (k, 1, e, cout, cout)
            }
        })
    })
}

/// TensorFlow "SAME" padding for one spatial dimension: (output size, pad before, pad after).
pub(crate) fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (out, total / 2, total - total / 2)
}

/// `c[m×n] += a[m×k] · b[k×n]`, all row-major and contiguous.
pub(crate) fn matmul_acc(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert_eq!(a.len(), m * k, "lhs size");
    assert_eq!(b.len(), k * n, "rhs size");
    assert_eq!(c.len(), m * n, "output size");
    // SAFETY: the three asserts above guarantee that every element sgemm addresses with these
    // row-major strides lies inside the slices; `c` is borrowed mutably, so nothing aliases it.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn relu6_in_place(values: &mut [f32]) {
    for v in values {
        *v = v.clamp(0.0, 6.0);
    }
}

/// 1×1 convolution: `W[out×in] · X[in×HW] + bias (+ residual)`, then ReLU6 if asked.
pub(crate) fn pointwise(
    x: &FeatureMap,
    conv: &Conv,
    relu6: bool,
    residual: Option<&FeatureMap>,
) -> FeatureMap {
    assert_eq!(conv.kernel, 1);
    assert_eq!(x.channels, conv.in_channels, "pointwise input channels");
    let plane = x.plane();
    // Start from bias (+ the skip connection) and let sgemm accumulate into it.
    let mut out = match residual {
        Some(r) => {
            assert_eq!(r.data.len(), conv.out_channels * plane, "residual shape");
            r.data.clone()
        }
        None => vec![0.0; conv.out_channels * plane],
    };
    for (row, b) in out.chunks_exact_mut(plane).zip(&conv.bias) {
        row.iter_mut().for_each(|v| *v += b);
    }
    matmul_acc(
        conv.out_channels,
        conv.in_channels,
        plane,
        &conv.weight,
        &x.data,
        &mut out,
    );
    if relu6 {
        relu6_in_place(&mut out);
    }
    FeatureMap::new(out, conv.out_channels, x.height, x.width)
}

/// Depthwise k×k convolution with TF "SAME" padding, + bias, then ReLU6 if asked.
/// Channels are independent, so large layers are split across the available cores.
pub(crate) fn depthwise(x: &FeatureMap, conv: &Conv, relu6: bool) -> FeatureMap {
    assert_eq!(conv.in_channels, 1);
    assert_eq!(x.channels, conv.out_channels, "depthwise channels");
    let (k, s) = (conv.kernel, conv.stride);
    let (oh, _, _) = same_padding(x.height, k, s);
    let (ow, _, _) = same_padding(x.width, k, s);
    let mut out = vec![0.0f32; x.channels * oh * ow];
    let macs = out.len() * k * k;
    let threads = if macs < 1_000_000 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    let per_thread = x.channels.div_ceil(threads);
    if threads == 1 {
        depthwise_channels(x, conv, relu6, 0, &mut out);
    } else {
        std::thread::scope(|scope| {
            for (i, chunk) in out.chunks_mut(per_thread * oh * ow).enumerate() {
                scope.spawn(move || depthwise_channels(x, conv, relu6, i * per_thread, chunk));
            }
        });
    }
    FeatureMap::new(out, x.channels, oh, ow)
}

/// The depthwise convolution of channels `first..` into `out` (whole output planes).
fn depthwise_channels(x: &FeatureMap, conv: &Conv, relu6: bool, first: usize, out: &mut [f32]) {
    let (k, s) = (conv.kernel, conv.stride);
    let (oh, pad_top, pad_bottom) = same_padding(x.height, k, s);
    let (ow, pad_left, pad_right) = same_padding(x.width, k, s);
    let (ph, pw) = (
        x.height + pad_top + pad_bottom,
        x.width + pad_left + pad_right,
    );
    // One zero-padded copy of a channel at a time, each row split into `s` column phases
    // (phase p holds padded columns p, p+s, p+2s, …). Every tap (dy, dx) then reads one
    // contiguous run of a phase row, so the inner loop has no border tests and no stride,
    // and the compiler vectorises it. Borders are never written, so they stay zero.
    let phase_len = pw.div_ceil(s);
    let mut padded = vec![0.0f32; ph * s * phase_len];
    for (c, output) in (first..).zip(out.chunks_exact_mut(oh * ow)) {
        let input = &x.data[c * x.plane()..(c + 1) * x.plane()];
        for (y, row) in input.chunks_exact(x.width).enumerate() {
            let py = y + pad_top;
            for phase in 0..s {
                // First input column landing in this phase: (col + pad_left) % s == phase.
                let col = (phase + s - pad_left % s) % s;
                let dst = (py * s + phase) * phase_len + (col + pad_left) / s;
                for (d, v) in padded[dst..]
                    .iter_mut()
                    .zip(row.iter().skip(col).step_by(s))
                {
                    *d = *v;
                }
            }
        }
        let kernel = &conv.weight[c * k * k..(c + 1) * k * k];
        output.fill(conv.bias[c]);
        for (oy, row_out) in output.chunks_exact_mut(ow).enumerate() {
            for dy in 0..k {
                let py = oy * s + dy;
                for dx in 0..k {
                    let w = kernel[dy * k + dx];
                    let start = (py * s + dx % s) * phase_len + dx / s;
                    for (o, i) in row_out.iter_mut().zip(&padded[start..start + ow]) {
                        *o += w * i;
                    }
                }
            }
        }
        if relu6 {
            relu6_in_place(output);
        }
    }
}

/// Dense k×k convolution with TF "SAME" padding (the stem), as im2col + sgemm.
pub(crate) fn dense_conv(x: &FeatureMap, conv: &Conv, relu6: bool) -> FeatureMap {
    assert_eq!(x.channels, conv.in_channels, "conv input channels");
    let (k, s) = (conv.kernel, conv.stride);
    let (oh, pad_top, _) = same_padding(x.height, k, s);
    let (ow, pad_left, _) = same_padding(x.width, k, s);
    let rows = x.channels * k * k;
    let mut cols = vec![0.0f32; rows * oh * ow];
    for c in 0..x.channels {
        for dy in 0..k {
            for dx in 0..k {
                let col = &mut cols[((c * k + dy) * k + dx) * oh * ow..][..oh * ow];
                for oy in 0..oh {
                    let Some(iy) = (oy * s + dy).checked_sub(pad_top) else {
                        continue;
                    };
                    if iy >= x.height {
                        continue;
                    }
                    for ox in 0..ow {
                        if let Some(ix) = (ox * s + dx).checked_sub(pad_left) {
                            if ix < x.width {
                                col[oy * ow + ox] = x.data[(c * x.height + iy) * x.width + ix];
                            }
                        }
                    }
                }
            }
        }
    }
    let mut out = vec![0.0f32; conv.out_channels * oh * ow];
    for (row, b) in out.chunks_exact_mut(oh * ow).zip(&conv.bias) {
        row.fill(*b);
    }
    matmul_acc(
        conv.out_channels,
        rows,
        oh * ow,
        &conv.weight,
        &cols,
        &mut out,
    );
    if relu6 {
        relu6_in_place(&mut out);
    }
    FeatureMap::new(out, conv.out_channels, oh, ow)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1) (no rand dependency needed).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Textbook convolution with explicit TF "SAME" padding, groups = 1 or depthwise.
    fn reference_conv(x: &FeatureMap, conv: &Conv, depthwise: bool) -> FeatureMap {
        let (k, s) = (conv.kernel, conv.stride);
        let (oh, pt, _) = same_padding(x.height, k, s);
        let (ow, pl, _) = same_padding(x.width, k, s);
        let mut out = vec![0.0f32; conv.out_channels * oh * ow];
        for o in 0..conv.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = conv.bias[o];
                    let inputs: Vec<usize> = if depthwise {
                        vec![o]
                    } else {
                        (0..x.channels).collect()
                    };
                    for (j, &c) in inputs.iter().enumerate() {
                        for dy in 0..k {
                            for dx in 0..k {
                                let iy = (oy * s + dy) as isize - pt as isize;
                                let ix = (ox * s + dx) as isize - pl as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= x.height as isize
                                    || ix >= x.width as isize
                                {
                                    continue;
                                }
                                let w = conv.weight[((o * inputs.len() + j) * k + dy) * k + dx];
                                acc += w * x.data
                                    [(c * x.height + iy as usize) * x.width + ix as usize];
                            }
                        }
                    }
                    out[(o * oh + oy) * ow + ox] = acc;
                }
            }
        }
        FeatureMap::new(out, conv.out_channels, oh, ow)
    }

    fn assert_close(a: &FeatureMap, b: &FeatureMap) {
        assert_eq!(
            (a.channels, a.height, a.width),
            (b.channels, b.height, b.width)
        );
        for (i, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
            assert!((x - y).abs() < 1e-4, "element {i}: {x} vs {y}");
        }
    }

    fn conv(out: usize, inp: usize, k: usize, stride: usize, seed: u32) -> Conv {
        Conv {
            weight: values(out * inp * k * k, seed),
            bias: values(out, seed + 1),
            out_channels: out,
            in_channels: inp,
            kernel: k,
            stride,
        }
    }

    #[test]
    fn same_padding_puts_the_extra_pixel_after() {
        assert_eq!(same_padding(224, 3, 2), (112, 0, 1));
        assert_eq!(same_padding(112, 5, 2), (56, 1, 2));
        assert_eq!(same_padding(56, 3, 1), (56, 1, 1));
        assert_eq!(same_padding(14, 5, 1), (14, 2, 2));
        assert_eq!(same_padding(7, 3, 2), (4, 1, 1));
        assert_eq!(same_padding(7, 1, 1), (7, 0, 0));
    }

    #[test]
    fn depthwise_matches_the_textbook_convolution() {
        for (h, w, k, s) in [
            (9, 7, 3, 1),
            (9, 7, 3, 2),
            (10, 8, 5, 2),
            (6, 6, 5, 1),
            (4, 3, 5, 2),
            (1, 1, 5, 1),
            (2, 1, 5, 2),
        ] {
            let x = FeatureMap::new(values(4 * h * w, 7), 4, h, w);
            let c = conv(4, 1, k, s, 3);
            assert_close(&depthwise(&x, &c, false), &reference_conv(&x, &c, true));
        }
    }

    #[test]
    fn dense_conv_matches_the_textbook_convolution() {
        for (h, w, s) in [(9, 7, 2), (8, 8, 2), (5, 6, 1)] {
            let x = FeatureMap::new(values(3 * h * w, 11), 3, h, w);
            let c = conv(5, 3, 3, s, 5);
            assert_close(&dense_conv(&x, &c, false), &reference_conv(&x, &c, false));
        }
    }

    #[test]
    fn pointwise_adds_bias_and_residual_then_clamps() {
        let x = FeatureMap::new(values(6 * 12, 2), 6, 3, 4);
        let c = conv(6, 6, 1, 1, 9);
        let plain = reference_conv(&x, &c, false);
        assert_close(&pointwise(&x, &c, false, None), &plain);

        let with_skip = pointwise(&x, &c, false, Some(&x));
        let expected: Vec<f32> = plain.data.iter().zip(&x.data).map(|(a, b)| a + b).collect();
        assert_close(&with_skip, &FeatureMap::new(expected, 6, 3, 4));

        let mut big = c.clone();
        big.bias.iter_mut().for_each(|b| *b = 10.0);
        let clamped = pointwise(&x, &big, true, None);
        assert!(clamped.data.iter().all(|&v| (0.0..=6.0).contains(&v)));
        assert!(clamped.data.contains(&6.0));
    }

    #[test]
    fn the_block_layout_is_efficientnet_lite0() {
        let specs: Vec<_> = block_specs().collect();
        assert_eq!(specs.len(), 16);
        assert_eq!(specs[0], (3, 1, 1, 32, 16));
        assert_eq!(specs[1], (3, 2, 6, 16, 24));
        assert_eq!(specs[2], (3, 1, 6, 24, 24));
        assert_eq!(specs[15], (3, 1, 6, 192, 320));
        let residual = specs
            .iter()
            .filter(|&&(_, s, _, i, o)| s == 1 && i == o)
            .count();
        assert_eq!(residual, 9);
    }

    #[test]
    fn weights_without_the_format_tag_are_refused() {
        let header = br#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&1.0f32.to_le_bytes());
        let err = EfficientNetLite0::from_safetensors(&bytes).unwrap_err();
        assert!(err.0.contains("format tag"), "{}", err.0);
        let err = EfficientNetLite0::from_safetensors(b"not a model").unwrap_err();
        assert!(err.0.contains("not a safetensors file"), "{}", err.0);
    }
}
