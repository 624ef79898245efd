@echo off
rem Quick start (Windows): set up .venv, then run the main job on the bundled mini-MIAS sample:
rem prepare -> augment -> train a small SR network (x2, pixel loss) and a tiny DCGAN -> evaluate -> infer.
setlocal
cd /d "%~dp0"
call scripts\setup_env.bat requirements.txt || exit /b 1
set TF_CPP_MIN_LOG_LEVEL=2
call 1.prepare.bat dataset\MIAS-sample.config || exit /b 1
.venv\Scripts\python.exe -m mammogan augment generator\MIAS-sample.config || exit /b 1
call projects\SRGAN\MIAS-x2\1.train.bat || exit /b 1
call projects\SRGAN\MIAS-x2\2.evaluate.bat || exit /b 1
call projects\SRGAN\MIAS-x2\3.infer.bat || exit /b 1
call projects\GAN\DCGAN-MIAS\1.train.bat || exit /b 1
call projects\GAN\DCGAN-MIAS\2.evaluate.bat || exit /b 1
call projects\GAN\DCGAN-MIAS\3.infer.bat || exit /b 1
.venv\Scripts\python.exe scripts\demo_summary.py || exit /b 1
echo.
echo Done. Where to look:
echo   prepared data     dataset\MIAS-sample\{train,valid,test}\ (images, masks, lr_x2, lr_x4), patches\, manifest.json
echo   augmented data    dataset\MIAS-sample-augmented\{train,valid,test}\ (augmentation.csv lists every output)
echo   SRGAN tiles       projects\SRGAN\MIAS-x2\output\epoch_tiles\ and epoch_tiles.gif
echo   SRGAN metrics     projects\SRGAN\MIAS-x2\output\train_metrics.csv, output\evaluation\evaluation.csv
echo   SR outputs        projects\SRGAN\MIAS-x2\output\inference\
echo   DCGAN tiles       projects\GAN\DCGAN-MIAS\output\epoch_tiles\ and epoch_tiles.gif
echo   DCGAN evaluation  projects\GAN\DCGAN-MIAS\output\evaluation\evaluation.csv (KID etc. vs step-0 and noise)
echo   synthetic images  projects\GAN\DCGAN-MIAS\output\synthetic\images\ (manifest.csv)
