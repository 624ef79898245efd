"""The typed schema of `train_eval_infer.config`: every section, key, default and one-line description.

This table is the single source of truth: the loader validates against it, `mammogan config keys`
prints it, and docs/config.md is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .types import Bool, Float, Int, ListOf, Name, PathValue, Pattern, Shares, Str, Table, ValueType

FOLDER = PathValue(kind="folder")
FILE = PathValue(kind="file")
SPLIT_FOLDER = PathValue(kind="folder", contents="images/ (and masks/)")


@dataclass(frozen=True)
class Key:
    name: str
    type: ValueType
    default: Any
    doc: str


@dataclass(frozen=True)
class Section:
    name: str
    doc: str
    keys: tuple[Key, ...]

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


PREPARE = Section(
    "prepare",
    "Data preparation (`prepare`): raw mammograms → cropped, oriented PNGs, masks, SR pairs, GAN patches, splits.",
    (
        Key("kind", Name("prepare_kind"), "mias", "Which kind of source to read: a registered source reader."),
        Key("input_dir", FOLDER, None, "Folder holding the raw images (PGM, DICOM, PNG/JPG/TIFF)."),
        Key("input_dirs", ListOf(FOLDER, min_length=1), None, "Folders whose mammograms form one dataset (kind = \"folders\"): PNG/TIFF/PGM files in each folder, DICOM files also in its sub-folders, e.g. two sites' or vendors' exports."),
        Key("patient_pattern", Pattern(), "^(.+)$", "kind = \"folders\": the patient of a PNG/TIFF/PGM file is this expression's group matched on its file name (e.g. \"^(\\\\d+)_\" puts 1_L_CC and 1_R_CC in one patient, so one split); a DICOM's patient comes from its header."),
        Key("info_file", FILE, None, "MIAS `Info.txt` with abnormality rows (kind = \"mias\")."),
        Key("annotations_dir", FOLDER, None, "Folder of INbreast OsiriX XML annotations, `<id>.xml` (kind = \"inbreast\")."),
        Key("metadata_file", PathValue(), None, "Per-image metadata table: INbreast.csv or INbreast.xls (kind = \"inbreast\"), or a CBIS-DDSM case-description CSV or a folder of them (kind = \"cbis\")."),
        Key("mias_reference_size", Int(1), 1024, "Pixel size of the frame MIAS coordinates refer to (scaled to the actual image size)."),
        Key("output_dir", FOLDER, None, "Dataset folder written (`train/valid/test/{images,masks}` plus SR and patch sets)."),
        Key("bit_depth", Int(choices=(8, 16)), 16, "Bits per pixel of the written PNGs: 16 keeps DICOM precision, 8 halves the size."),
        Key("voi_lut", Bool(), True, "Apply the DICOM VOI LUT / window (first of several); false keeps the full modality range."),
        Key("orientation", Str(("left", "right", "none")), "left", "Flip every breast so its chest wall is on this side ('none' keeps the input)."),
        Key("crop_breast", Bool(), True, "Crop to the largest bright connected component (removes background and burned-in labels)."),
        Key("clear_background", Bool(), True, "Set pixels outside the (slightly dilated) breast region to 0, erasing burned-in labels inside the crop box."),
        Key("crop_threshold", Float(0.0, 1.0), 0.08, "Breast/background threshold as a fraction of the image's intensity range (digitised films with a grey background use the level between background and tissue instead)."),
        Key("crop_margin", Int(0), 8, "Pixels kept around the breast bounding box."),
        Key("max_size", Int(0), 0, "Resize so the longest side is at most this many pixels after cropping (0 keeps the size)."),
        Key("point_radius", Float(0.0), 3.0, "Radius of the disk drawn for single-point ROIs (typical for micro-calcifications)."),
        Key("point_radius_unit", Str(("px", "mm")), "px", "Unit of point_radius: prepared-image pixels, or mm via the DICOM pixel spacing."),
        Key("split_ratios", Shares(("train", "valid", "test")), [0.7, 0.15, 0.15], "Train/valid/test fractions, split by patient/source image before any augmentation."),
        Key("seed", Int(0), 42, "Seed of the split and of patch sampling."),
        Key("sr_scales", ListOf(Int(2, 8)), [2, 4], "Upscaling factors for which LR counterparts are written."),
        Key("sr_patch_size", Int(0), 0, "Also write fixed-size SR pairs: HR patches of this side (a multiple of every sr_scale) tiled over the breast, in `<split>/sr_patches_x<scale>/{images,lr}` (0: whole images only)."),
        Key("degradation", Name("degradation"), "bicubic", "How LR images are made from HR: a registered degradation."),
        Key("blur_sigma", Float(0.0), 0.0, "Gaussian blur sigma (in HR pixels) for the `gaussian` degradation; 0 derives it from the scale."),
        Key("noise_std", Float(0.0), 0.0, "Std of Gaussian noise added to LR images, as a fraction of the full range."),
        Key("patch_size", Int(16), 64, "Side of the GAN patches cut around lesions and from healthy tissue."),
        Key("patch_zooms", ListOf(Float(0.1, 16.0), 1), [1.0, 2.0], "Context zoom levels for lesion patches (1 = patch_size around the centre, 2 = twice the context, resized)."),
        Key("normal_patches_per_image", Int(0), 4, "Healthy-tissue patches sampled inside the breast of each image."),
        Key("min_breast_fraction", Float(0.0, 1.0), 0.9, "Fraction of a healthy GAN patch or an SR patch that must lie inside the breast mask."),
        Key("pseudonym_key_file", FILE, None, "Secret key for pseudonymous DICOM patient ids (created if missing; default <output_dir>/.pseudonym_key - keep it private)."),
        Key("workers", Int(1), 1, "Processes used to prepare images in parallel."),
        Key("overwrite", Bool(), False, "Redo outputs that already exist (otherwise finished images are skipped)."),
        Key("on_error", Str(("fail", "skip")), "fail", "After a batch with unreadable files: 'fail' exits non-zero, 'skip' exits 0 (both report them)."),
    ),
)

DATASET = Section(
    "dataset",
    "Training data read by `train`, `evaluate` and `infer`.",
    (
        Key("train_dir", SPLIT_FOLDER, None, "Folder with `images/` (and optional `masks/`) used for training; for SR, the HR images."),
        Key("valid_dir", SPLIT_FOLDER, None, "Validation folder, same layout as `train_dir`."),
        Key("test_dir", SPLIT_FOLDER, None, "Test folder used by `evaluate`, same layout as `train_dir`."),
        Key("class_column", Str(), "lesion_class", "Conditional GANs: column of the patch splits' metadata.csv holding each patch's class."),
        Key("lr_subdir", Str(), "", "For SR: subfolder of each split holding LR images paired by name, `{scale}` standing for [model] scale (empty: degrade HR on the fly)."),
        Key("data_range", Float(0.0), 0.0, "Maximum pixel value of the stored images (255, 65535, ...); 0 takes it from each PNG's bit depth."),
        Key("patch_size", Int(8), 96, "HR crop side for SR training (the LR crop is patch_size / scale); GAN image sides are [model] image_size."),
        Key("lesion_crop_fraction", Float(0.0, 1.0), 0.5, "Fraction of SR crops centred on a lesion-mask pixel when masks exist."),
        Key("min_crop_mean", Float(0.0, 1.0), 0.0, "SR: a uniformly placed HR crop darker than this mean (fraction of full scale) moves elsewhere in its image (10 tries, else the brightest), so film background does not fill the batches (0: off)."),
        Key("augment_flips", Bool(), True, "Random flips and 90° rotations of training crops."),
        Key("storage", Str(("memory", "tfrecord")), "memory", "SR training images: decoded into RAM, or streamed from TFRecord shards (for sets larger than memory; written on first use, rewritten when the sources change)."),
        Key("tfrecord_dir", FOLDER, None, "Folder of the TFRecord shards (storage = \"tfrecord\"; default <train_dir>/tfrecords_x<scale>)."),
        Key("crops_per_image", Int(1), 8, "storage = \"tfrecord\": crops cut from each decoded image before the next one is read."),
        Key("shuffle_buffer", Int(1), 16, "storage = \"tfrecord\": images (as PNG bytes) held to shuffle their order; more mixes better, costs RAM."),
        Key("synthetic_dirs", ListOf(PathValue(kind="folder", contents="images/ and manifest.csv")), [], "Folders written by a GAN `infer` (`images/` and `manifest.csv`) whose images are mixed into unconditional GAN training (the dcgan task)."),
        Key("synthetic_ratio", Float(0.0), 0.0, "Synthetic images drawn per real training image from synthetic_dirs (0: real only)."),
    ),
)

MODEL = Section(
    "model",
    "Networks, picked from the registries by name.",
    (
        Key("task", Name("family"), "srgan", "The model family: a registered family ('srgan', 'dcgan', 'conditional', 'mask_to_image', ...) or study ('utility', 'domain_extractor') that owns training, evaluation and inference."),
        Key("generator", Name("generator"), "srresnet", "Generator architecture (registered name)."),
        Key("discriminator", Name("discriminator"), "vgg", "Discriminator architecture (registered name)."),
        Key("scale", Int(choices=(2, 4, 8)), 2, "SR upscaling factor (2 or 4; powers of two use depth-to-space steps)."),
        Key("filters", Int(1), 64, "Base number of generator filters."),
        Key("blocks", Int(0), 16, "Residual blocks (SRResNet, CycleGAN's resnet_translator: 6 for 128² crops, 9 for 256²), RRDB blocks, or the down-sampling levels of unet_translator (1-7)."),
        Key("batch_norm", Bool(), False, "Batch normalisation inside generator residual blocks."),
        Key("global_skip", Str(("bicubic", "bilinear", "none")), "bicubic", "Add an interpolated copy of the input to the SR output, so the network learns the residual."),
        Key("translator_skip", Bool(), False, "CycleGAN translators: output tanh(artanh(input) + residual) with the residual's last conv starting at zero, so an untrained translator is the identity and training learns only the change (the paper's translators make the image from scratch)."),
        Key("d_filters", Int(1), 64, "Base number of discriminator filters."),
        Key("d_blocks", Int(1), 4, "Down-sampling stages in the discriminator."),
        Key("spectral_norm", Bool(), False, "Spectral normalisation on discriminator convolutions."),
        Key("d_normalization", Str(("auto", "batch", "layer", "instance", "none")), "auto", "Normalisation in the synthetic-GAN discriminator (none when spectral_norm): auto = layer norm for a Wasserstein critic (the gradient penalty is per example, batch norm would couple examples), instance norm for CycleGAN's PatchGAN (the paper's), batch norm otherwise."),
        Key("d_laplacian", Bool(), False, "Synthetic-GAN discriminators (dcgan, conditional_dcgan): feed the image's Laplacian (×4) as a second input channel, so fine texture counts at the image's amplitude."),
        Key("d_minibatch_std", Bool(), False, "Synthetic-GAN discriminators (dcgan, conditional_dcgan): a minibatch standard-deviation channel at 4×4 (ProGAN), so batches of too-alike samples are told from real ones."),
        Key("g_normalization", Str(("instance", "batch", "none")), "instance", "Normalisation inside the CycleGAN translators: instance norm (the paper's; each inference tile is then normalised by its own statistics, as training crops were), or batch norm / none, which make a translator a local operator whose tiled output equals its whole-image output."),
        Key("latent_dim", Int(1), 128, "Size of the latent vector of unconditional GAN generators."),
        Key("image_size", Int(choices=(16, 32, 64, 128, 256, 512, 1024)), 64, "Side of images generated by synthetic GANs (power of two, 64-256; 512 allowed)."),
        Key("classes", ListOf(Str()), [], "Conditional GANs: the class names generated, in label order (values of [dataset] class_column)."),
        Key("projection", Bool(), True, "Conditional GANs: add the projection term <embed(y), phi(x)> to the discriminator logit."),
        Key("mapping_layers", Int(1), 4, "StyleGAN2 generators: dense layers of the mapping network from latent (and class) to style."),
        Key("upsampling", Str(("nearest", "bilinear", "subpixel", "transposed")), "nearest", "Synthetic-image generators' ×2 steps: nearest or bilinear resize then conv, sub-pixel conv with ICNR initialisation, or transposed conv (checkerboard-prone; for comparison)."),
        Key("spade", Bool(), False, "Mask-to-image generator: SPADE normalisation in the decoder (the mask sets each pixel's scale and shift) instead of batch norm."),
    ),
)

TRAIN = Section(
    "train",
    "Training loop (`train`).",
    (
        Key("output_dir", FOLDER, "./output", "Run folder: checkpoints, logs, CSVs, tiles and models."),
        Key("seed", Int(0), 1234, "Seed of weights, crops and latent vectors."),
        Key("batch_size", Int(1), 16, "Global batch size (split across replicas)."),
        Key("pretrain_steps", Int(0), 1000, "SR phase 1: generator steps on the pixel loss alone."),
        Key("gan_steps", Int(0), 1000, "Adversarial steps (SR phase 2, or the whole run of a synthetic GAN)."),
        Key("steps_per_epoch", Int(1), 100, "Steps between validation, logging, tiles and checkpoints."),
        Key("g_learning_rate", Float(0.0, above=True), 1e-4, "Generator learning rate."),
        Key("d_learning_rate", Float(0.0, above=True), 1e-4, "Discriminator learning rate (TTUR: may differ from the generator's)."),
        Key("optimizer", Name("optimizer"), "adam", "Optimizer for both networks (registered name)."),
        Key("beta_1", Float(0.0, 1.0), 0.9, "Adam beta_1."),
        Key("beta_2", Float(0.0, 1.0), 0.999, "Adam beta_2."),
        Key("epsilon", Float(0.0, above=True), 1e-8, "Adam/AdamW/RMSprop epsilon. Pixel-loss gradients on [0, 1] images are tiny (1e-8 and below once the error is small); an epsilon above them silently shrinks the updates."),
        Key("lr_schedule", Name("schedule"), "constant", "Learning-rate schedule over steps (registered name)."),
        Key("lr_decay_steps", ListOf(Int(1)), [], "Step boundaries of the `piecewise` schedule."),
        Key("lr_decay_factor", Float(0.0, 1.0, above=True), 0.5, "Factor applied at each boundary / on plateau."),
        Key("plateau_patience", Int(0), 0, "Epochs without validation improvement before the LR is reduced (0: off)."),
        Key("pretrained_generator", FILE, None, "SR: a trained generator (.keras, e.g. another run's models/best/generator.keras) whose weights start this run, as BasicSR's pretrain_network_g: an SRGAN fine-tune from a PSNR-oriented run. Read once, at step 0; a resumed run continues from its checkpoint."),
        Key("pixel_loss", Name("loss"), "mse", "Pixel loss of the generator (registered name); mse (SRResNet-MSE) optimises PSNR, l1/charbonnier favour the median pixel."),
        Key("lesion_weight", Float(1.0), 1.0, "Calcification-aware loss: weight of pixels inside lesion masks (1 = plain loss)."),
        Key("lesion_weight_classes", ListOf(Str(("calcification", "mass", "other"))), [], "SR: the lesion classes whose masks (`masks_<class>/`, their union) lesion_weight weights and lesion crops centre on ([]: the any-lesion mask `masks/`)."),
        Key("adversarial_loss", Name("adversarial_loss"), "nonsaturating", "Adversarial loss (registered name)."),
        Key("loss_weights", Table(Str(), Float(0.0)), {"pixel": 1.0, "adversarial": 1e-3, "feature_matching": 0.0}, "Weights of the generator loss terms: SR phase 2 (pixel, adversarial, feature_matching, perceptual) and mask_to_image (pixel, adversarial, feature_matching, mode_seeking: rewards samples that change with the latent)."),
        Key("perceptual_weights", Str(), "", "VGG19 weights for the perceptual loss term: \"imagenet\" (the local Keras cache only, never downloaded) or a weights file path; used when loss_weights has perceptual > 0."),
        Key("label_smoothing", Float(0.0, 0.5), 0.0, "One-sided label smoothing of real labels for the discriminator."),
        Key("instance_noise", Float(0.0), 0.0, "Std of Gaussian noise added to D inputs, annealed to 0 over training."),
        Key("diffaugment", ListOf(Name("diffaugment")), [], "DiffAugment policies applied to real and generated images before every D call, in order, e.g. [\"translation\", \"cutout\", \"color\"] (\"translation_reflect\" fills the shift by mirroring, as ADA; []: off)."),
        Key("ada_target", Float(0.0, 1.0), 0.0, "ADA: target of r_t = E[sign(D(real))]; each diffaugment policy then hits an example with an adaptive probability p (0: off, p = 1)."),
        Key("ada_interval", Int(1), 4, "ADA: discriminator steps between updates of p."),
        Key("ada_speed_images", Float(1.0), 500000.0, "ADA: real images over which p can move from 0 to 1."),
        Key("class_loss_weight", Float(0.0), 1.0, "Conditional GANs: weight of the ACGAN auxiliary classification loss (0: projection only)."),
        Key("class_weights", ListOf(Float(0.0)), [], "Conditional GANs: sampling weight per [model] classes entry (empty: uniform)."),
        Key("n_critic", Int(1), 5, "WGAN-GP: critic steps per generator step (adversarial_loss = \"wasserstein\")."),
        Key("gp_weight", Float(0.0), 10.0, "WGAN-GP: gradient-penalty weight lambda."),
        Key("r1_gamma", Float(0.0), 0.0, "Unconditional GANs: R1 penalty weight γ (Mescheder et al. 2018; D loss + γ/2·‖∇D(real)‖², on the augmented reals D sees; 0: off) — StyleGAN2's regulariser, used with spectral_norm = false."),
        Key("spectral_weight", Float(0.0), 0.0, "Unconditional GANs: weight of a generator term matching the generated batch's per-band mean and spread of the log radial power spectrum to the real batch's (Durall et al. 2020; 0: off) — against smooth blobs and up-convolution peaks."),
        Key("ema_decay", Float(0.0, 1.0), 0.999, "Decay of the exponential moving average of generator weights (0: off)."),
        Key("mixed_precision", Bool(), False, "Train in mixed_float16 with loss scaling (GPU)."),
        Key("jit_compile", Bool(), False, "Compile train steps with XLA."),
        Key("strategy", Str(("default", "mirrored", "multi_worker")), "default", "Distribution strategy (tf.distribute): one device, several local GPUs, or several hosts via TF_CONFIG."),
        Key("keep_checkpoints", Int(1), 3, "Checkpoints kept by the CheckpointManager."),
        Key("keep_best", Bool(), True, "Export models/best at the best validation epoch (what evaluate and infer use). false: only models/final is written and used — for adversarial fine-tuning, whose best-PSNR epoch is its least adversarial one."),
        Key("snapshot_every", Int(0), 0, "Also export models/step_<step> every this many epochs (0: off); the synthetic-image evaluation (latent-vector GAN families) scores each snapshot as an arm step_<step> — what more steps buy."),
        Key("early_stopping_patience", Int(0), 0, "Epochs without validation improvement before training stops (0: off)."),
        Key("tile_images", Int(1, 16), 4, "Images shown in each epoch-change tile."),
        Key("collapse_diversity", Float(0.0, 1.0), 0.0, "Collapse monitor: flag an epoch whose generated validation samples' mean pairwise distance falls below this fraction of the real images' (0: off)."),
        Key("collapse_d_accuracy", ListOf(Float(0.0, 1.0), 2, 2), [0.0, 1.0], "Collapse monitor: flag an epoch whose discriminator accuracy on real validation images leaves this [low, high] band."),
        Key("collapse_patience", Int(1), 2, "Collapse monitor: consecutive flagged epochs before it acts."),
        Key("collapse_rollback", Bool(), False, "Collapse monitor: restore the last checkpoint before the collapse and continue with learning rates × lr_decay_factor (false: warn only)."),
        Key("collapse_max_rollbacks", Int(0), 2, "Collapse monitor: rollbacks allowed before training stops with an error."),
    ),
)

EVAL = Section(
    "eval",
    "Evaluation (`evaluate`).",
    (
        Key("output_dir", FOLDER, "./output/evaluation", "Where per-image and summary CSVs and comparison crops go."),
        Key("border_crop", Int(0), 0, "Pixels removed from each border before computing metrics."),
        Key("metrics", ListOf(Name("metric"), 1), ["psnr", "ssim"], "Full-reference metrics computed (registered names)."),
        Key("roi_margin", Int(0), 16, "Context kept around lesion masks for the in-lesion metrics."),
        Key("comparison_crops", Int(0), 4, "Side-by-side comparison PNGs written: SR crops, or the closest synthetic/training pairs of the memorisation check (0: none)."),
        Key("num_samples", Int(2), 256, "Synthetic GANs: generated samples compared with the real test patches."),
        Key("feature_extractor", Name("feature_extractor"), "random_cnn", "Features for KID/precision/recall: 'inception' (local ImageNet weights), 'domain' (a classifier trained on real patches) or 'random_cnn' (seeded, untrained; reported as such)."),
        Key("extractor_weights", PathValue(), None, "Weights of the feature extractor: an InceptionV3 .h5 (the with-top file adds the classifier score), or for 'domain' a domain_extractor/v<NNN> folder (or any classifier .keras)."),
        Key("kid_subsets", Int(1), 50, "Random subsets over which KID's mean and std are computed."),
        Key("kid_subset_size", Int(2), 100, "Samples per KID subset (capped at the smaller set)."),
        Key("classifier_score_splits", Int(1), 10, "Synthetic GANs: splits over which the Inception-Score-style classifier score's mean and std are computed (capped at the samples); needs an extractor with a classifier head."),
        Key("frd", Bool(), False, "Synthetic GANs: also compute the Fréchet Radiomics Distance with the optional frd-score package (pip install -r requirements-extra.txt)."),
        Key("near_copy_ssim", Float(0.0, 1.0), 0.95, "Memorisation check: a synthetic image is a near-copy when its SSIM with a training image (in any flip/90° rotation) reaches this."),
        Key("near_copy_cosine", Float(0.0, 1.0), 0.998, "Memorisation check: ... also when the cosine similarity of its standardised feature_extractor features with a training image's reaches this."),
    ),
)

INFER = Section(
    "infer",
    "Inference (`infer`).",
    (
        Key("input_dir", FOLDER, None, "Folder of images (PNG/PGM/DICOM) to super-resolve."),
        Key("output_dir", FOLDER, "./output/inference", "Where results go."),
        Key("tile_size", Int(16), 256, "LR tile side for tiled SR inference (bounds memory)."),
        Key("tile_overlap", Int(0), 16, "LR pixels shared by neighbouring tiles, blended with weights."),
        Key("tile_batch", Int(1), 4, "Tiles run through the generator at once."),
        Key("num_samples", Int(1), 16, "Synthetic GANs: images sampled."),
        Key("seed", Int(0), 7, "Synthetic GANs: seed of the sampled latents."),
        Key("mask_source", Str(("prior", "real")), "prior", "Mask-to-image GANs: condition on masks drawn from the mask prior (moved training masks and random blobs) or on the real masks of mask_dir, cycled."),
        Key("mask_dir", FOLDER, None, "Mask-to-image GANs, mask_source = \"real\": a split folder with `masks/` (or a folder of mask PNGs); default [dataset] train_dir."),
        Key("prior_real_fraction", Float(0.0, 1.0), 0.5, "Mask-to-image GANs, mask_source = \"prior\": fraction of masks that are moved non-empty [dataset] train_dir masks (flip, 90° rotation, scale, shift); the rest are random blobs."),
        Key("reject_near_copies", Bool(), False, "Synthetic GANs: leave out samples the memorisation check flags against [dataset] train_dir ([eval] thresholds and extractor); the manifest lists them."),
    ),
)

GENERATOR = Section(
    "generator",
    "Offline augmentation (`augment`): writes augmented image/mask pairs beside the originals.",
    (
        Key("input_dir", FOLDER, None, "Dataset folder with `train/` (and `valid/`, `test/`) splits of `{images,masks*,lr_x*}` paired by file name."),
        Key("output_dir", FOLDER, None, "Where the augmented dataset is written (same split layout, plus `augmentation.csv`); must lie outside input_dir."),
        Key("splits", ListOf(Str(("train", "valid")), 1), ["train"], "Splits that are augmented (test never is); the others are copied unchanged."),
        Key("seed", Int(0), 2024, "Base seed; each output's seed derives from it, the split, source and augmentation, and is recorded in the manifest."),
        Key("workers", Int(1), 1, "Processes over source images."),
        Key("hflip", Bool(), True, "Horizontal flip."),
        Key("vflip", Bool(), True, "Vertical flip."),
        Key("rotation_angles", ListOf(Float(-360.0, 360.0)), [90.0, 180.0, 270.0], "Counter-clockwise rotations in degrees, canvas size kept ([] : off)."),
        Key("border_mode", Str(("constant", "reflect", "replicate")), "constant", "How pixels outside the image are filled by geometric transforms (masks: same mode, constant 0)."),
        Key("border_value", Float(0.0, 1.0), 0.0, "Image fill for border_mode = 'constant', as a fraction of the full range."),
        Key("shrink_ratios", ListOf(Float(0.1, 1.0)), [0.8], "Shrink ratios, padded back to the original size ([] : off)."),
        Key("shear_factors", ListOf(ListOf(Float(-1.0, 1.0), 2)), [[0.1, 0.0], [0.0, 0.1]], "Shear [x, y] factor pairs about the centre ([] : off)."),
        Key("elastic", ListOf(ListOf(Float(0.0), 2)), [[8.0, 32.0]], "Elastic deformations as [alpha = RMS displacement, sigma = smoothness] in pixels ([] : off)."),
        Key("grid_distortion", ListOf(ListOf(Float(0.0), 2)), [[0.3, 5.0]], "Random grid distortions as [strength (< 0.5 of a cell), grid cells per side] ([] : off)."),
        Key("barrel_centres", ListOf(ListOf(Float(0.0, 1.0), 2)), [[0.5, 0.5]], "Barrel distortion centres [x, y] as fractions of width and height (c1, c2, ... in output names)."),
        Key("barrel_radius", Float(0.0), 0.3, "Radius of the barrel-distorted disk, as a fraction of the shorter image side (> 0)."),
        Key("barrel_amounts", ListOf(Float(0.0)), [0.3], "Barrel strengths, one output per centre and amount ([] : off)."),
        Key("pincushion_centres", ListOf(ListOf(Float(0.0, 1.0), 2)), [[0.5, 0.5]], "Pincushion distortion centres [x, y] as fractions of width and height."),
        Key("pincushion_radius", Float(0.0), 0.3, "Radius of the pincushion-distorted disk, as a fraction of the shorter image side (> 0)."),
        Key("pincushion_amounts", ListOf(Float(0.0)), [0.3], "Pincushion strengths, one output per centre and amount ([] : off)."),
        Key("gamma", ListOf(Float(0.05, 10.0)), [], "Image-only gamma changes ([] : off)."),
        Key("contrast", ListOf(Float(0.0, 10.0)), [], "Image-only contrast factors around the mean ([] : off)."),
        Key("brightness", ListOf(Float(-1.0, 1.0)), [], "Image-only brightness shifts as fractions of the range ([] : off)."),
        Key("noise", ListOf(Float(0.0, 1.0)), [], "Image-only Gaussian noise std as fractions of the range ([] : off)."),
        Key("chains", ListOf(ListOf(Str(), 2)), [], "Augmentations applied one after another in one output, every combination of their variants, e.g. [[\"hflip\", \"elastic\"]]."),
    ),
)

UTILITY = Section(
    "utility",
    "Downstream-utility benchmark (`[model] task = \"utility\"`; `train` runs it, `evaluate` re-summarises): a lesion-vs-normal "
    "patch classifier trained from scratch on real / real + traditional augmentation / real + synthetic / all three, tested on "
    "real [dataset] test_dir patches only. Real labels come from the `metadata.csv` beside the patch splits; patches are read at "
    "[model] image_size; [train] output_dir, batch_size are used. The `domain_extractor` task trains one classifier with "
    "classifier, filters, epochs and learning_rate (seed: [train] seed). The `utility_cv` task is the cross-validated study: "
    "patient-level folds of patches_dir, generators trained per fold, arms × ratios × seeds, patient-bootstrap intervals "
    "(docs/utility.md).",
    (
        Key("augmented_dir", FOLDER, None, "Output of `mammogan augment` run on the patch splits (its `train/images` and `augmentation.csv`); each augmented patch takes its source patch's label."),
        Key("synthetic_dir", FOLDER, None, "Output folder of a GAN `infer` run (`images/`, `manifest.csv`, `resolved.config`)."),
        Key("synthetic_ratio", Float(0.0), 1.0, "Synthetic images added per real training patch (rounded; the folder must hold enough)."),
        Key("synthetic_class", Str(("lesion", "normal")), None, "Label of an unconditional GAN's samples (the class of the patches it was trained on); conditional samples are labelled by their manifest class (normal or a lesion class), mask-to-image samples by whether their mask marks anything."),
        Key("classifier", Name("classifier"), "small_resnet", "Patch classifier trained from scratch (registered name)."),
        Key("filters", Int(1), 16, "Filters of the classifier's first stage, doubled at each later stage (small_resnet: a multiple of 4)."),
        Key("epochs", Int(1), 30, "Training epochs per run; the weights of the epoch with the lowest class-balanced [dataset] valid_dir loss are tested."),
        Key("learning_rate", Float(0.0, above=True), 1e-3, "Adam learning rate of the classifier."),
        Key("seeds", ListOf(Int(0), 1), [1, 2, 3], "One run per seed and arm; a seed fixes the initial weights and batch order, identical across arms (paired comparison)."),
        Key("backbone_weights", FILE, None, "Pretrained classifiers (efficientnet_b0, resnet50): the local ImageNet weights file of the Keras application without its top ('*_notop.h5'); never downloaded."),
        Key("patches_dir", FOLDER, None, "utility_cv: a prepared `patches/` folder (split subfolders and metadata.csv, images.csv beside it) whose patients are pooled and cross-validated."),
        Key("pool_splits", ListOf(Str(("train", "valid", "test")), 1), ["train", "valid", "test"], "utility_cv: the prepared splits pooled for cross-validation (keep one aside as external_test_dir)."),
        Key("target_column", Str(("lesion_class", "severity")), "lesion_class", "utility_cv: the metadata column the classifier predicts; severity values B/M, BENIGN/MALIGNANT read as benign/malignant."),
        Key("classes", ListOf(Str(), 2), ["normal", "mass", "calcification"], "utility_cv: the classes (values of target_column) the classifier tells apart; patches of other values are left out."),
        Key("zoom", Float(0.0), 0.0, "utility_cv: only patches of this prepare zoom level (0: every zoom; a patient's zooms stay in one fold)."),
        Key("max_normal_per_image", Int(0), 0, "utility_cv: at most this many 'normal' patches per film, first by name (0: all)."),
        Key("folds", Int(2), 5, "utility_cv: patient-level cross-validation folds, stratified by each patient's rarest class."),
        Key("split_seed", Int(0), 0, "utility_cv: seed of the fold and validation assignment (the same for every seed and arm)."),
        Key("valid_fraction", Float(0.05, 0.5), 0.15, "utility_cv: share of each fold's training patients held out to pick the classifier's epoch (never used by the generators)."),
        Key("augment_config", FILE, None, "utility_cv: a `mammogan augment` config whose [generator] transforms make the traditional arm (its input_dir, output_dir and splits are replaced per fold)."),
        Key("repeat_control", Bool(), False, "utility_cv: add the arm real_repeated, the real patches repeated to the traditional arm's size: as many optimisation steps per epoch as traditional, no new images (tells extra steps from extra data)."),
        Key("synthetic_configs", ListOf(FILE), [], "utility_cv: GAN experiment configs; each is trained on every fold's training patients (per class when unconditional) and sampled into its own arms."),
        Key("gan_steps", Int(1), 500, "utility_cv: [train] gan_steps of every generator the study trains (its budget knob)."),
        Key("synthetic_ratios", ListOf(Float(0.0, above=True), 1), [1.0], "utility_cv: synthetic images per real training patch of each synthetic class; one arm per ratio."),
        Key("synthetic_classes", ListOf(Str()), [], "utility_cv: the classes that get synthetic images (empty: all)."),
        Key("bootstrap_samples", Int(100), 1000, "utility_cv: patient-level bootstrap resamples of the 95 % intervals and paired p-values."),
        Key("external_test_dir", FOLDER, None, "utility_cv: a prepared patch split of other patients (e.g. patches/test kept out of pool_splits, or another site); every fold classifier is also scored there."),
    ),
)

SINGAN = Section(
    "singan",
    "SinGAN (`[model] task = \"singan\"`): one multi-scale GAN per patch of [dataset] train_dir (a bank), trained coarse to fine "
    "at [model] image_size. Defaults are the paper's (Shaham et al., ICCV 2019).",
    (
        Key("filter_column", Str(), "lesion_class", "Column of the patch splits' metadata.csv that picks the patches the bank trains on (and the real test patches it is evaluated against)."),
        Key("filter_value", Str(), "", "Value of filter_column a patch must have, e.g. \"calcification\" (empty: every patch)."),
        Key("zoom", Float(0.0), 1.0, "Only patches of this prepare zoom level (the metadata's zoom column; 0: any)."),
        Key("max_patches", Int(0), 0, "Train on at most this many of the chosen patches, in name order (0: all)."),
        Key("scale_factor", Float(0.1, 0.95), 0.75, "Approximate size ratio between neighbouring scales (adjusted so the steps from min_size are even)."),
        Key("min_size", Int(8), 25, "Shorter side of the coarsest scale in pixels."),
        Key("max_size", Int(16), 250, "Longer side of the finest scale: larger patches are shrunk to it."),
        Key("num_scales", Int(0), 0, "Scales of the pyramid (0: derived from the patch size, min_size and scale_factor)."),
        Key("filters", Int(1), 32, "Filters of the coarsest scale's generator and critic, doubled every 4 scales."),
        Key("max_filters", Int(1), 128, "Most filters at any scale."),
        Key("layers", Int(3), 5, "3×3 conv blocks per generator and critic (the patch each critic score sees is 2·layers + 1 px)."),
        Key("steps_per_scale", Int(1), 2000, "Training iterations per scale (each: d_steps critic and g_steps generator updates)."),
        Key("d_steps", Int(1), 3, "Critic updates per iteration."),
        Key("g_steps", Int(1), 3, "Generator updates per iteration."),
        Key("learning_rate", Float(0.0, above=True), 5e-4, "Adam learning rate of both networks (beta_1 0.5, beta_2 0.999)."),
        Key("lr_decay_step", Int(0), 1600, "Iteration of each scale after which the learning rate is multiplied by lr_decay_factor (0: never)."),
        Key("lr_decay_factor", Float(0.0, 1.0, above=True), 0.1, "Learning-rate factor after lr_decay_step."),
        Key("gp_weight", Float(0.0), 0.1, "WGAN-GP gradient-penalty weight."),
        Key("reconstruction_weight", Float(0.0), 10.0, "alpha: weight of the reconstruction loss of the fixed noise path."),
        Key("noise_amp", Float(0.0), 0.1, "Noise amplitude of a scale = noise_amp × RMSE of the upsampled coarser reconstruction against the real image (the coarsest scale's is 1)."),
        Key("workers", Int(1), 1, "Patches trained in parallel, one process each (the cores are shared among them)."),
        Key("injection_scale", Int(0), 0, "`infer`/`evaluate`: 0 samples from the coarsest scale; n > 0 starts from the source patch (or inject_image) at scale n, keeping its coarse geometry, and then the source's mask is written with the sample."),
        Key("inject_image", FILE, None, "injection_scale > 0: inject this image (resized to the patch) into every SinGAN of the bank instead of each one's source patch (harmonisation/editing); no mask is written."),
        Key("sample_size", ListOf(Float(0.25, 8.0), 2, 2), [1.0, 1.0], "Random samples' height and width as multiples of the source patch's (other sizes and aspect ratios; injection_scale = 0 only)."),
    ),
)

CYCLEGAN = Section(
    "cyclegan",
    "CycleGAN (`[model] task = \"cyclegan\"`): unpaired translation between two domains A and B, trained on random [model] "
    "image_size crops of [dataset] train_dir (valid_dir for validation, test_dir for `evaluate`). Defaults are the paper's "
    "(Zhu et al., ICCV 2017); use adversarial_loss = \"lsgan\" and lr_schedule = \"linear_decay\" as it did.",
    (
        Key("domain_column", Str(), "background_tissue", "Column of the prepare table beside each split (metadata.csv of a patch split, images.csv of an image split) whose values pick the domains, e.g. MIAS background_tissue F/G/D; empty: each split folder holds A/ and B/ sub-folders of images instead."),
        Key("domain_a", ListOf(Str(), 1), ["F"], "Values of domain_column that make domain A (MIAS F = fatty)."),
        Key("domain_b", ListOf(Str(), 1), ["D"], "Values of domain_column that make domain B (MIAS D = dense)."),
        Key("zoom", Float(0.0), 0.0, "Patch splits: only patches of this prepare zoom level (the metadata's zoom column; 0: any)."),
        Key("cycle_weight", Float(0.0), 10.0, "lambda: weight of the cycle-consistency L1 |F(G(a)) - a| + |G(F(b)) - b|."),
        Key("identity_weight", Float(0.0), 0.5, "Identity L1 |G(b) - b| + |F(a) - a| weighted identity_weight x cycle_weight (0: off); keeps grey levels where nothing needs to change."),
        Key("pool_size", Int(0), 50, "Generated images kept per discriminator: once full, each fake the discriminator sees is a stored older one with probability 1/2 (0: always the newest)."),
        Key("direction", Str(("a_to_b", "b_to_a")), "a_to_b", "`infer`: which translator turns [infer] input_dir into the other domain."),
        Key("dense_threshold", Float(0.0, 1.0), 0.0, "`evaluate`: grey level above which a pixel counts as dense tissue in the density measure (0: the median of the evaluated real crops of both domains)."),
    ),
)

SECTIONS: dict[str, Section] = {s.name: s for s in (PREPARE, DATASET, MODEL, TRAIN, EVAL, INFER, GENERATOR, UTILITY, SINGAN,
                                                    CYCLEGAN)}
