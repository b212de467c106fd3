import { defineConfig, type Options } from 'tsup';
import shared from '../../tsup.config';

// The shared config, with the commands' private kit (@picop/cli-kit) bundled in: never published.
export default defineConfig({ ...(shared as Options), noExternal: ['@picop/cli-kit'] });
