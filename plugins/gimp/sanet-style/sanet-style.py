#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters → Style Transfer → "Style Transfer…" and "Repeat Last Style Transfer".

Reads the active layer (at its own precision) and the selection, sends them to the sanetd daemon through
sanet_client, and puts the result on a NEW layer above the original, clipped by a layer mask made from the
selection. Everything it adds is one undo step (named after the filter); the original layer is never written
to, and it is the active layer again afterwards (so Filters → Repeat works on it).

Selection handling: the daemon gets the feathered selection (u8 or float, as GIMP stores it) and does the
blend itself, `sel·stylized + (1−sel)·original`, so the new layer's pixels are exactly the engine's result
(the same as `sanet.Stylizer.stylize(..., selection=sel)`). The new layer's layer mask is the selection's
footprint: white wherever the selection is non-zero, black elsewhere. So the new layer is fully transparent
outside the selection, the feathered edge shows once (not twice), and the artist can still paint the mask to
hide parts of the result.

Modules: sanet_gimp_io (GIMP pixels in/out, one run), sanet_gimp_dialog (the dialog with its live preview),
and pure helpers tested without GIMP: _settings, _pixels, _preview, _job, _daemon, _watchdog.
"""
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sanet_gimp_job import Job, PluginError, emit_event, import_client  # noqa: E402
from sanet_gimp_settings import (DEFAULT_MODEL, DEFAULT_QUALITY, DEFAULT_STYLE_KEYS, MODELS,  # noqa: E402
                                 QUALITIES, SCSA_DEFAULT_WEIGHTS, SCSA_WEIGHT_MAX, STYLE_KEYS, STYLE_MAX_SIDE, STYLE_MAX_SIDE_MAX, SettingsError,
                                 load_last_values, save_last_values)

PROC_MAIN = "python-fu-sanet-style-transfer"
PROC_REPEAT = "python-fu-sanet-style-transfer-repeat"
MENU = "<Image>/Filters/Style Transfer"
FILTER_NAME = "Style Transfer"   # error messages start with it (once)


def _error(procedure, status, message):
    return procedure.new_return_values(status, GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0))


def stylize_drawable(image, drawable, settings):
    """A run without the dialog (scripts, Repeat): progress in GIMP's progress bar; its Cancel kills the
    plug-in, and the watchdog then cancels the daemon job at once. Returns the new layer."""
    import sanet_gimp_io as io
    sanet_client = import_client()
    run = io.prepare_run(sanet_client, image, drawable, settings)
    watchdog = io.start_watchdog(sanet_client)
    Gimp.progress_init("Style transfer: connecting to sanetd…")
    last_stage = [None]

    def on_progress(fraction, stage):
        if stage != last_stage[0]:  # the status bar names the stage (encode styles, decode, …)
            last_stage[0] = stage
            Gimp.progress_set_text(f"Style transfer: {stage}")
            emit_event("run-progress", stage=stage, fraction=round(fraction, 3))
        Gimp.progress_update(max(0.0, min(1.0, fraction)))

    emit_event("run-started", job_id=run.job_id, width=run.width, height=run.height,
               watchdog=watchdog.pid if watchdog is not None else None)

    try:
        result = Job(lambda p, c: io.submit_run(sanet_client, run, p, c, watchdog)).run(on_progress=on_progress)
    except sanet_client.JobCancelled:
        raise io.PluginCancelled() from None
    except sanet_client.SanetClientError as exc:
        raise PluginError(str(exc)) from None
    finally:
        Gimp.progress_end()
        if watchdog is not None:
            watchdog.close()
    layer = io.finish_run(sanet_client, image, drawable, run, result)
    emit_event("run-finished", job_id=run.job_id)
    return layer


def run_main(procedure, run_mode, image, drawables, config, data):
    if len(drawables) != 1:
        return _error(procedure, Gimp.PDBStatusType.CALLING_ERROR,
                      f"{FILTER_NAME}: select exactly one layer (it works on one layer at a time).")
    import sanet_gimp_io as io
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    last = {}
    if run_mode != Gimp.RunMode.NONINTERACTIVE:
        last = load_last_values(io.last_values_path())
        if run_mode == Gimp.RunMode.WITH_LAST_VALS and not last:
            return _error(procedure, Gimp.PDBStatusType.CALLING_ERROR,
                          f"{FILTER_NAME}: nothing to repeat yet; run Filters → Style Transfer → Style Transfer… "
                          "first.")
        io.apply_values(config, last)
    try:
        if interactive:
            import sanet_gimp_dialog
            from sanet_gimp_settings import load_server_choice
            io.check_drawable(drawables[0])
            server = load_server_choice(io.server_choice_path())
            if server is not None:      # the dialog's Server choice of this GIMP profile
                config.set_property("connection-file", server)
            done = sanet_gimp_dialog.run_dialog(procedure, config, image, drawables[0], last)
            if done is None:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
            run, result, dialog_values = done
            io.finish_run(import_client(), image, drawables[0], run, result)
        else:
            dialog_values = {}
            settings = io.settings_from_config(config, image)
            stylize_drawable(image, drawables[0], settings)
        try:
            values = dict(last, **io.config_to_values(config))
            values.update(dialog_values)
            save_last_values(io.last_values_path(), values)
        except OSError:
            pass  # remembering settings is a convenience; the result is already in the image
    except SettingsError as exc:
        return _error(procedure, Gimp.PDBStatusType.CALLING_ERROR, f"{FILTER_NAME}: {exc}")
    except io.PluginCancelled:
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except PluginError as exc:
        return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, f"{FILTER_NAME}: {exc}")
    except Exception as exc:  # never a Python traceback for the artist, always one message
        return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR,
                      f"{FILTER_NAME} failed: {type(exc).__name__}: {exc}")
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def run_repeat(procedure, run_mode, image, drawables, config, data):
    """Run the main procedure again with the values of its last successful run."""
    main = Gimp.get_pdb().lookup_procedure(PROC_MAIN)
    cfg = main.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.WITH_LAST_VALS)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", drawables)
    result = main.run(cfg)
    status = result.index(0)
    if status == Gimp.PDBStatusType.SUCCESS or status == Gimp.PDBStatusType.CANCEL:
        return procedure.new_return_values(status, GLib.Error())
    return _error(procedure, status, Gimp.get_pdb().get_last_error() or f"{FILTER_NAME} failed")


class SanetStyle(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_MAIN, PROC_REPEAT]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        if name == PROC_MAIN:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_main, None)
            proc.set_menu_label("Style _Transfer…")
            proc.set_documentation(
                "Paint the layer in the style of one or more images (SANet or AdaAttN, via the sanetd daemon)",
                "Stylizes the active layer inside the selection and puts the result on a new layer above it, "
                "masked by the selection; the dialog shows a live preview. Needs the sanetd daemon (the dialog "
                "can start it; in a terminal: `sanetd`).", name)
        elif name == PROC_REPEAT:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_repeat, None)
            proc.set_menu_label("_Repeat Last Style Transfer")
            proc.set_documentation("Repeat the last style transfer with the same settings",
                                   "Runs Style Transfer again on the active layer with the last values.", name)
        else:
            return None
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.add_menu_path(MENU)
        proc.set_attribution("sanet-style", "sanet-style contributors", "2026")
        if name == PROC_MAIN:
            add_arguments(proc)
        return proc


def add_arguments(proc):
    rw = GObject.ParamFlags.READWRITE
    proc.add_file_argument("style-file", "Style image", "Style image file (any format GIMP opens)",
                           Gimp.FileChooserAction.OPEN, True, None, rw)
    proc.add_string_array_argument("style-files", "More style images",
                                   "More style image files, mixed with the others", rw)
    proc.add_layer_argument("style-layer", "Style from a la_yer",
                            "A layer of any open image to use as a style (optional)", True, rw)
    proc.add_string_argument("library-styles", "Library styles",
                             "Ids of styles in the sanetd library, comma-separated", "", rw)
    proc.add_string_argument("style-weights", "Style weights",
                             "One weight per style, comma-separated, in the order: style image, more style "
                             "images, style layer, library styles. Empty: equal weights", "", rw)
    proc.add_double_argument("alpha", "S_trength", "How much style: 0 keeps the content, 1 is full style",
                             0.0, 1.0, 1.0, rw)
    proc.add_boolean_argument("preserve-colors", "Preserve colo_urs",
                              "Keep the layer's colours, take only the style's texture", False, rw)
    proc.add_boolean_argument("preview", "Fast preview", "Lower resolution, much faster (for trying styles)",
                              False, rw)
    proc.add_boolean_argument("only-in-selection", "Only i_nside the selection",
                              "Limit the result to the selection (feathered edges kept); ignored when "
                              "nothing is selected", True, rw)
    proc.add_int_argument("style-max-side", "Style size",
                          "Longest side the styles are shrunk to: smaller gives a finer texture, larger a bolder "
                          f"one (0: the daemon's default, {STYLE_MAX_SIDE})", 0, STYLE_MAX_SIDE_MAX, 0, rw)
    proc.add_string_argument("model", "Model",
                             "The method: " + ", ".join(f"{k} ({v})" for k, v in MODELS.items()) +
                             f" (empty: {DEFAULT_MODEL}), or a fine-tuned variant MODEL:NAME (e.g. sanet:my-style, "
                             "installed with `sanet weights install RUN_DIR`). sanetd must have its weights installed "
                             "(`sanet weights install --model NAME`)", DEFAULT_MODEL, rw)
    proc.add_string_argument("style-keys", "Style keys",
                             f"AdaAttN only: {' or '.join(STYLE_KEYS)}. 'sampled' (the released behaviour) attends "
                             "over a fixed random subset of a large style's positions; 'all' over every one "
                             "(full attention: finer, slower on large styles)", DEFAULT_STYLE_KEYS, rw)
    proc.add_string_argument("quality", "Quality",
                             f"{' or '.join(QUALITIES)}: the full-size result in full precision (exact, the default) "
                             "or in sanetd's fast precision (fast: bf16 on CPUs with AVX-512-BF16 / AMX-BF16, fp16 on "
                             "GPUs; slightly different, faster). Where sanetd has no fast precision, fast runs exact. "
                             "Previews use sanetd's automatic choice", DEFAULT_QUALITY, rw)
    proc.add_boolean_argument("start-daemon", "Start sanetd _when needed",
                              "When sanetd is not running, start the one the installer set up (or `sanetd` on "
                              "PATH); for scripts and Repeat (the dialog has a Start button)", False, rw)
    proc.add_string_argument("connection-file", "Connection file",
                             "Path of sanetd.json (empty: find the running daemon automatically)", "", rw)
    # SCSA semantic style transfer: region-to-region style with label maps (content and styles)
    proc.add_layer_argument("content-labels-layer", "Re_gion map layer",
                            "SCSA: a layer of the image painted with one flat colour per region (sky, face, …); "
                            "it must have the active layer's size. The same colour in a style's label map means "
                            "the same region", True, rw)
    proc.add_string_argument("content-labels-channels", "Region map channels",
                             "SCSA, instead of a label layer: saved selection channels, comma-separated "
                             "(channel k above 50 % = region k, later channels win; '*' = every saved channel). "
                             "Style label maps are then greyscale images whose values are the labels "
                             "(0 = outside every channel, 1 = the first channel, …)", "", rw)
    proc.add_string_array_argument("style-label-files", "Style label maps",
                                   "SCSA: one label-map image per style, in the style order (style image, more "
                                   "style images, style layer, library styles), each at its style's size: "
                                   "colours like the label layer, or grey values = channel numbers with label "
                                   "channels; '' or 'none' for a style without one", rw)
    proc.add_layer_argument("style-label-layer", "Region map o_f the style layer",
                            "SCSA: a layer (of any open image) holding the label map of the style-layer style, at "
                            "that layer's size; instead of its item in style-label-files", True, rw)
    proc.add_double_argument("scsa-t1", "Region attention (t_1)",
                             "SCSA weight of the semantic continuous attention (SCA)",
                             0.0, SCSA_WEIGHT_MAX, SCSA_DEFAULT_WEIGHTS[0], rw)
    proc.add_double_argument("scsa-t2", "Sparse attention (t_2)",
                             "SCSA weight of the semantic sparse attention (SSA, the best-matching style pixel)",
                             0.0, SCSA_WEIGHT_MAX, SCSA_DEFAULT_WEIGHTS[1], rw)


Gimp.main(SanetStyle.__gtype__, sys.argv)
